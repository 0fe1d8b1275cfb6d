import { chmodSync, lstatSync, mkdirSync, readdirSync, type Stats, statSync } from "node:fs";
import { join } from "node:path";

/**
 * Make every file and directory this process creates from now on private
 * to its user (0600 and 0700), whatever umask it was started with. That
 * covers the files SQLite creates by itself (the -wal and -shm beside the
 * database), which no mode argument of ours reaches.
 */
export function restrictNewFiles(): void {
  process.umask(0o077);
}

/** What `makePrivateDir` did. */
export interface PrivateDir {
  /** The directory did not exist and was made. */
  readonly created: boolean;
  /** Paths that group or others could read, write or enter before, now private. */
  readonly tightened: readonly string[];
}

/**
 * Make `dir` private to this process's user: create it 0700 when absent;
 * otherwise refuse it when another user owns it or anything in it (the
 * relay could not keep what it writes there from that user), and take the
 * group and other bits off it and off everything in it. Symbolic links are
 * left as they are (a chmod would follow them).
 */
export function makePrivateDir(dir: string, what: string): PrivateDir {
  const stat = statIfAny(dir);
  if (stat === undefined) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700); // the mode mkdir was given passes through the umask
    return { created: true, tightened: [] };
  }
  if (!stat.isDirectory()) throw new Error(`${what} ${dir} is not a directory`);
  const { foreign, open } = scanPrivateDir(dir, stat);
  if (foreign !== undefined) {
    throw new Error(
      `${what} ${
        foreign.path === dir ? dir : `${dir} holds ${foreign.path}, which`
      } is owned by uid ${foreign.uid}, not by uid ${foreign.owner} that runs the relay; ` +
        `run the relay as the user that owns it, or give it to this one (chown -R ${foreign.owner} ${dir})`,
    );
  }
  for (const { path, mode } of open) chmodSync(path, mode & 0o700);
  return { created: false, tightened: open.map((o) => o.path) };
}

/** What `scanPrivateDir` found: the first path another user owns, and the paths group or others may reach. */
export interface PrivateDirScan {
  readonly foreign?: { readonly path: string; readonly uid: number; readonly owner: number };
  readonly open: readonly { readonly path: string; readonly mode: number }[];
}

/**
 * Look, without changing anything, at `dir` (an existing directory) and
 * everything in it: owned by another user than this process's, or open to
 * group or others. Symbolic links are not followed.
 */
export function scanPrivateDir(dir: string, stat: Stats = statSync(dir)): PrivateDirScan {
  const uid = process.getuid?.();
  let foreign: PrivateDirScan["foreign"];
  const open: { path: string; mode: number }[] = [];
  const visit = (path: string, s: Stats): void => {
    if (uid !== undefined && s.uid !== uid) foreign ??= { path, uid: s.uid, owner: uid };
    if ((s.mode & 0o077) !== 0) open.push({ path, mode: s.mode });
    if (!s.isDirectory()) return;
    for (const name of readdirSync(path)) {
      const child = join(path, name);
      const childStat = lstatSync(child);
      if (!childStat.isSymbolicLink()) visit(child, childStat);
    }
  };
  visit(dir, stat);
  return { ...(foreign ? { foreign } : {}), open };
}

function statIfAny(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}
