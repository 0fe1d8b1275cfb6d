import type { Command } from "../command.ts";

export const versionCommand: Command = {
  name: "version",
  summary: "print the version",
  usage: "Usage: relay version",
  async run({ print, version, runtime }) {
    print(`relay ${version} (${runtime.name} ${runtime.version})`);
    return 0;
  },
};
