/**
 * A bearer token kept in a file that is replaced while we run (kubelet rotates projected
 * service-account tokens by swapping a symlink). Read again whenever the file's identity or
 * mtime changed, so a rotated token is used on the next request, not a minute later.
 */
import { readFileSync, statSync } from 'node:fs';

export class TokenFile {
  private token = '';
  private stamp = '';

  constructor(readonly path: string) {}

  private current(): string {
    const st = statSync(this.path);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  }

  read(): string {
    const stamp = this.current();
    if (stamp !== this.stamp) {
      this.token = readFileSync(this.path, 'utf8').trim();
      this.stamp = stamp;
    }
    return this.token;
  }

  /** True when the file changed since the last read (a 401 then deserves one retry). */
  changedSinceRead(): boolean {
    try {
      return this.current() !== this.stamp;
    } catch {
      return false;
    }
  }
}
