/**
 * The dashboard's shell: login with a token, then the fleet's topology, incidents, rollouts and
 * failovers, releases, warnings and data plane, live. This file holds the session (the token and
 * who it is), the live data and the layout; each panel is a view of its own (views/), and the
 * pieces they share are in components/. Every action goes through the API with the user's token,
 * so the API's roles and refusals apply as they do to the CLI; the dashboard shows its messages.
 */

import { useEffect, useMemo, useState } from "preact/hooks";
import { type Outcome, type PendingAction, runAction } from "./actions.ts";
import { Api, ApiError } from "./api.ts";
import { ConfirmDialog } from "./components/Confirm.tsx";
import { useFleet } from "./live.ts";
import type { Whoami } from "./model.ts";
import { Activity } from "./views/Activity.tsx";
import { Brakes } from "./views/Brakes.tsx";
import { DataPlane } from "./views/DataPlane.tsx";
import { Events } from "./views/Events.tsx";
import { Header } from "./views/Header.tsx";
import { Incidents } from "./views/Incidents.tsx";
import { Login } from "./views/Login.tsx";
import { Releases } from "./views/Releases.tsx";
import { Stores } from "./views/Stores.tsx";
import { Summary } from "./views/Summary.tsx";
import { Topology } from "./views/Topology.tsx";
import { Warnings } from "./views/Warnings.tsx";

const TOKEN_KEY = "homeostat.token";

/** The whole app: the login until a token works, then the dashboard. */
export function App() {
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(TOKEN_KEY));
  const [who, setWho] = useState<Whoami | null>(null);
  const [loginError, setLoginError] = useState<string | null>(null);
  const api = useMemo(() => (token === null ? null : new Api(token)), [token]);

  const signOut = (why: string | null): void => {
    sessionStorage.removeItem(TOKEN_KEY);
    setToken(null);
    setWho(null);
    setLoginError(why);
  };

  useEffect(() => {
    if (api === null) return;
    let cancelled = false;
    whoami(api)
      .then((w) => {
        if (!cancelled) setWho(w);
      })
      .catch((error: unknown) => {
        if (!cancelled) signOut(error instanceof Error ? error.message : String(error));
      });
    return () => {
      cancelled = true;
    };
  }, [api]);

  if (api === null) {
    return (
      <Login
        error={loginError}
        onToken={async (candidate) => {
          const probe = new Api(candidate);
          const w = await whoami(probe);
          sessionStorage.setItem(TOKEN_KEY, candidate);
          setWho(w);
          setLoginError(null);
          setToken(candidate);
        }}
      />
    );
  }
  if (who === null) return <p class="loading">Checking the token…</p>;
  return <Dashboard api={api} who={who} onSignOut={(why) => signOut(why)} />;
}

/** Who the token belongs to; a controller without `/v1/whoami` gives an unknown role. */
async function whoami(api: Api): Promise<Whoami> {
  try {
    return await api.get<Whoami>("/v1/whoami");
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      // No whoami route: the token still has to open the status to count as working.
      await api.get("/v1/status");
      return { name: "unknown", role: null };
    }
    throw error;
  }
}

/**
 * The signed-in page: live data, the layout of the panels, and the one confirmation dialog and
 * outcome line every action shares. A token the API stops accepting signs the user out.
 */
function Dashboard(props: { api: Api; who: Whoami; onSignOut: (why: string | null) => void }) {
  const fleet = useFleet(props.api);
  const [pending, setPending] = useState<PendingAction | null>(null);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const { onSignOut } = props;
  useEffect(() => {
    if (fleet.unauthorized !== null) onSignOut(`The API refused the token: ${fleet.unauthorized}`);
  }, [fleet.unauthorized, onSignOut]);

  const run = async (action: PendingAction, reason: string, force: boolean): Promise<void> => {
    setOutcome(await runAction(props.api, action, reason, force));
    // Show the action's effect now rather than at the next poll.
    fleet.refresh();
  };

  const canAct = props.who.role !== "viewer";
  const ask = (action: PendingAction): void => {
    setOutcome(null);
    setPending(action);
  };
  const status = fleet.status;
  return (
    <>
      <a class="skip" href="#main">
        Skip to the fleet
      </a>
      <Header fleet={fleet} who={props.who} onSignOut={() => props.onSignOut(null)} />
      <main id="main" tabIndex={-1}>
        {!canAct && (
          <p class="note" data-testid="read-only">
            <span aria-hidden="true">ⓘ </span>
            This token has the <strong>viewer</strong> role: the API refuses its actions (deploy, rollback,
            failover need operator).
          </p>
        )}
        <div aria-live="polite" class="outcome-region">
          {outcome !== null && (
            <p
              class={outcome.ok ? "outcome ok" : "outcome error"}
              role={outcome.ok ? "status" : "alert"}
              data-testid="outcome"
            >
              <span aria-hidden="true">{outcome.ok ? "✔ " : "✖ "}</span>
              {outcome.text}
            </p>
          )}
        </div>
        {status === null ? (
          <p class="loading">Loading the fleet…</p>
        ) : (
          <div class="layout">
            <Summary status={status} />
            <Brakes status={status} ask={ask} />
            <Warnings status={status} fleet={fleet} />
            <Topology status={status} fleet={fleet} ask={ask} />
            <Incidents incidents={fleet.incidents} status={status} />
            <Activity fleet={fleet} />
            <Releases status={status} fleet={fleet} ask={ask} />
            <DataPlane fleet={fleet} />
            <Stores status={status} />
            <Events fleet={fleet} />
          </div>
        )}
      </main>
      <footer class="foot">
        <p>
          Homeostat dashboard · data from this controller's API ( <a href="/openapi.json">OpenAPI</a> ) ·
          actions use your token's role
        </p>
      </footer>
      {pending !== null && (
        <ConfirmDialog
          action={pending}
          admin={props.who.role === "admin"}
          onClose={() => setPending(null)}
          onConfirm={(reason, force) => {
            const action = pending;
            setPending(null);
            void run(action, reason, force);
          }}
        />
      )}
    </>
  );
}
