import { SOURCE_TARGET, sourceCommit } from "../build-info.ts";
import type { Command } from "../command.ts";

export const versionCommand: Command = {
  name: "version",
  summary: "print the version, commit, target and build date",
  usage: `Usage: relay version [--json]

Prints the version, the git commit it was built from ("-dirty": with
uncommitted changes), the target (linux-x64, linux-x64-baseline, linux-arm64,
linux-x64-musl; "source" when run from a checkout), the build date and the
runtime.

  --json   one JSON object: version, commit, target, build_date, runtime
           (commit and build_date are null when unknown)`,
  options: { json: { type: "boolean" } },
  async run({ print, build, runtime, options }) {
    const commit = build.target === SOURCE_TARGET ? sourceCommit() : build.commit;
    const runtimeName = `${runtime.name} ${runtime.version}`;
    if (options.json === true) {
      print(JSON.stringify({
        version: build.version,
        commit,
        target: build.target,
        build_date: build.buildDate,
        runtime: runtimeName,
      }));
      return 0;
    }
    print(`relay ${build.version}`);
    print(`commit:  ${commit ?? "unknown"}`);
    print(`target:  ${build.target}`);
    print(`built:   ${build.buildDate ?? "not built (running from source)"}`);
    print(`runtime: ${runtimeName}`);
    return 0;
  },
};
