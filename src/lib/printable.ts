/**
 * Text that came from someone else (an operator's reason, an instance's exit detail, a fleet
 * file's string) shown where it could pass for something else: a newline starts a forged row of
 * a table or log, ESC sequences rewrite the terminal, Unicode line separators and bidirectional
 * overrides reorder what is read. Such characters are written as escapes (`\n`, `\u001b`).
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const DECEPTIVE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT_ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` with every deceptive character written as an escape; other text unchanged. */
export function printable(text: string): string {
  return text.replace(
    DECEPTIVE,
    (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
