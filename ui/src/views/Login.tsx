/** The sign-in page: a token pasted once, checked by the caller before the dashboard opens. */

import { useEffect, useRef, useState } from "preact/hooks";

/**
 * The token form. `onToken` rejects with the reason a token does not work, shown here; `error`
 * is why the last session ended (a revoked token), shown until the user tries again.
 */
export function Login(props: { error: string | null; onToken: (token: string) => Promise<void> }) {
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(props.error);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  return (
    <main id="main" class="login">
      <h1>
        <span aria-hidden="true">⟳ </span>Homeostat
      </h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const token = value.trim();
          if (token === "") {
            setError("Paste a token first.");
            return;
          }
          setBusy(true);
          setError(null);
          props
            .onToken(token)
            .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)))
            .finally(() => setBusy(false));
        }}
      >
        <label for="token">API token</label>
        <input
          id="token"
          ref={input}
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={value}
          aria-describedby="token-help"
          aria-invalid={error !== null}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
        <p id="token-help" class="help">
          <code>homeostat up</code> wrote an admin token to{" "}
          <code>.homeostat/&lt;fleet file name&gt;/admin-token</code> beside the fleet file; make others with{" "}
          <code>homeostat token create --name NAME --role viewer|operator|admin</code>. The token stays in
          this tab only (session storage) and is sent as <code>Authorization: Bearer</code>.
        </p>
        {error !== null && (
          <p class="error" role="alert">
            <span aria-hidden="true">✖ </span>
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
