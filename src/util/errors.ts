/**
 * Errors a user can fix (bad flag, bad file, bad value) exit 2 with one line;
 * runtime failures exit 1. The CLI prints `message` only, never a stack,
 * unless FRAMECOST_DEBUG=1.
 */
export class UserError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(oneLine(message));
    this.name = "UserError";
  }
}

export class RuntimeFailure extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = "RuntimeFailure";
  }
}

/** Exit code for any thrown value: 2 for user mistakes, 1 otherwise. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UserError) return 2;
  return 1;
}

/**
 * One line whatever the user typed: a newline or another control character in a value is shown
 * escaped, as JSON writes it ("a\nb"), never breaking the line.
 */
function oneLine(message: string): string {
  let out = "";
  for (const c of message) {
    const code = c.charCodeAt(0);
    out += code === 0x7f ? "\\u007f" : code < 0x20 ? JSON.stringify(c).slice(1, -1) : c;
  }
  return out;
}
