import { existsSync, readFileSync } from "node:fs";

/**
 * The binaries a release holds, and what each is made of: the Bun runtime it
 * is compiled onto (an npm package of the `bun` package's family) and the
 * libSQL native addon embedded in it (an npm package `libsql` names as an
 * optional dependency). scripts/build.ts builds one; scripts/release.ts all.
 */
export interface ReleaseTarget {
  /** What the file names and `relay version` call it: relay-<version>-<name>. */
  readonly name: string;
  /** The CPU it runs on, as node:process names it. */
  readonly arch: "x64" | "arm64";
  /** Bun's compile target. */
  readonly bunTarget: string;
  /** The npm package holding Bun's executable for that target (bin/bun). */
  readonly runtimePackage: string;
  /** The npm package holding libSQL's addon for that target (index.node). */
  readonly addonPackage: string;
}

export const RELEASE_TARGETS: readonly ReleaseTarget[] = [
  {
    name: "linux-x64",
    arch: "x64",
    bunTarget: "bun-linux-x64",
    runtimePackage: "@oven/bun-linux-x64",
    addonPackage: "@libsql/linux-x64-gnu",
  },
  {
    // Bun's default x64 build needs AVX2; this one runs on older or emulated CPUs (Nehalem and later).
    name: "linux-x64-baseline",
    arch: "x64",
    bunTarget: "bun-linux-x64-baseline",
    runtimePackage: "@oven/bun-linux-x64-baseline",
    addonPackage: "@libsql/linux-x64-gnu",
  },
  {
    name: "linux-arm64",
    arch: "arm64",
    bunTarget: "bun-linux-arm64",
    runtimePackage: "@oven/bun-linux-aarch64",
    addonPackage: "@libsql/linux-arm64-gnu",
  },
  {
    name: "linux-x64-musl",
    arch: "x64",
    bunTarget: "bun-linux-x64-musl",
    runtimePackage: "@oven/bun-linux-x64-musl",
    addonPackage: "@libsql/linux-x64-musl",
  },
];

/** Every Bun compile target scripts/build.ts knows -> the `@libsql/*` package holding its addon. */
export const LIBSQL_ADDON: Readonly<Record<string, string>> = {
  ...Object.fromEntries(RELEASE_TARGETS.map((t) => [t.bunTarget, t.addonPackage])),
  "bun-linux-arm64-musl": "@libsql/linux-arm64-musl",
  "bun-darwin-x64": "@libsql/darwin-x64",
  "bun-darwin-arm64": "@libsql/darwin-arm64",
};

/** Debian's qemu-user-static, with the arm64 libraries of libc6-arm64-cross and libgcc-s1-arm64-cross. */
export const ARM64_EMULATOR: readonly string[] = ["/usr/bin/qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"];

/**
 * How this machine runs `target`'s binary: the command to put before it
 * (none when it runs natively, qemu for arm64 on x64), or why it cannot.
 * Whether the binary's own libraries are here is not checked: running it tells.
 */
export function launcherFor(target: ReleaseTarget): readonly string[] | string {
  if (process.platform !== "linux") return `built for Linux, this is ${process.platform}`;
  if (target.arch === process.arch) {
    const needsAvx2 = target.arch === "x64" && target.bunTarget === "bun-linux-x64";
    if (needsAvx2 && !/^flags\s*:.*\bavx2\b/m.test(readFileSync("/proc/cpuinfo", "utf8"))) {
      return "this CPU has no AVX2 (the baseline build is for it)";
    }
    return [];
  }
  if (target.arch === "arm64" && process.arch === "x64") {
    const [qemu, , sysroot] = ARM64_EMULATOR;
    if (existsSync(qemu!) && existsSync(`${sysroot}/lib/ld-linux-aarch64.so.1`)) return ARM64_EMULATOR;
    return `an arm64 binary needs ${qemu} (Debian qemu-user-static) and ${sysroot} (libc6-arm64-cross, libgcc-s1-arm64-cross) here`;
  }
  return `built for ${target.arch}, this machine is ${process.arch}`;
}
