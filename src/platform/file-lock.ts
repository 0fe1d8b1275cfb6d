import { closeSync, constants, ftruncateSync, openSync, writeSync } from "node:fs";
import { constants as os } from "node:os";

/**
 * An exclusive flock(2) lock on a file, held through an open descriptor:
 * the kernel drops it when the process ends, however it ends (kill -9
 * included), so it is never left stale. node:fs has no flock, so each
 * runtime supplies its own way to it: Bun calls libc through bun:ffi, Deno
 * has FsFile.tryLock. Both take the same flock lock on Linux, so a relay
 * under Bun and one under Deno exclude each other too.
 */
export interface FileLock {
  /** Drop the lock now (the process is about to end anyway). */
  release(): void;
}

/** flock(2) operations (the same values on Linux and macOS). */
const LOCK_EX = 2;
const LOCK_NB = 4;

declare const Deno: {
  openSync(path: string, options: { read: boolean; write: boolean; create: boolean; mode: number }): DenoFile;
};
interface DenoFile {
  tryLockSync(exclusive: boolean): boolean;
  truncateSync(length: number): void;
  writeSync(data: Uint8Array): number;
  close(): void;
}

/**
 * Deno: lock `path` (made 0600 if absent) and write `content` into it;
 * undefined when another process holds the lock.
 */
export function denoTryLock(path: string, content: string): FileLock | undefined {
  const file = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
  try {
    if (!file.tryLockSync(true)) {
      file.close();
      return undefined;
    }
    file.truncateSync(0);
    const bytes = new TextEncoder().encode(content);
    for (let at = 0; at < bytes.length;) at += file.writeSync(bytes.subarray(at));
  } catch (error) {
    file.close();
    throw error;
  }
  return { release: () => file.close() };
}

interface Libc {
  flock(fd: number, operation: number): number;
  errno(): number;
  setenv(name: string, value: string): number;
}

let libc: Promise<Libc> | undefined;

/** libc's flock, errno and setenv through bun:ffi, loaded once (glibc, musl or macOS). */
export function bunLibc(): Promise<Libc> {
  libc ??= (async () => {
    const ffi = await import("bun:ffi");
    const darwin = process.platform === "darwin";
    const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
    const names = darwin ? ["libSystem.B.dylib"] : ["libc.so.6", `libc.musl-${arch}.so.1`];
    // errno is thread-local in libc; its address comes from a function whose name differs.
    const errnoAt = darwin ? "__error" : "__errno_location";
    const failures: string[] = [];
    for (const name of names) {
      try {
        const { symbols } = ffi.dlopen(name, {
          flock: { args: [ffi.FFIType.i32, ffi.FFIType.i32], returns: ffi.FFIType.i32 },
          [errnoAt]: { args: [], returns: ffi.FFIType.ptr },
          setenv: { args: [ffi.FFIType.cstring, ffi.FFIType.cstring, ffi.FFIType.i32], returns: ffi.FFIType.i32 },
        });
        const errnoAddress = symbols[errnoAt]!;
        const cString = (text: string) => new TextEncoder().encode(`${text}\0`);
        return {
          flock: (fd, operation) => symbols.flock(fd, operation),
          errno: () => ffi.read.i32(errnoAddress()!, 0),
          setenv: (name, value) => symbols.setenv(cString(name), cString(value), 1),
        };
      } catch (error) {
        failures.push(`${name}: ${(error as Error).message}`);
      }
    }
    throw new Error(`cannot load libc: ${failures.join("; ")}`);
  })();
  return libc;
}

/**
 * Bun: lock `path` (made 0600 if absent) and write `content` into it;
 * undefined when another process holds the lock.
 */
export async function bunTryLock(path: string, content: string): Promise<FileLock | undefined> {
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    const { flock, errno } = await bunLibc();
    if (flock(fd, LOCK_EX | LOCK_NB) !== 0) {
      const code = errno();
      if (code === os.errno.EWOULDBLOCK) {
        closeSync(fd);
        return undefined;
      }
      const name = Object.entries(os.errno).find(([, n]) => n === code)?.[0] ?? `errno ${code}`;
      throw new Error(`cannot lock ${path}: flock failed with ${name}`);
    }
    ftruncateSync(fd, 0);
    writeSync(fd, content, 0);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return { release: () => closeSync(fd) };
}
