/**
 * The confirmation every action goes through: what it will do, a reason for the audit log where
 * the API records one, and the admin-only override of the safety checks.
 */

import { useEffect, useRef, useState } from "preact/hooks";
import type { PendingAction } from "../actions.ts";

/** A modal confirmation (native `<dialog>`: focus moves in, Escape cancels, focus returns). */
export function ConfirmDialog(props: {
  action: PendingAction;
  admin: boolean;
  onClose: () => void;
  onConfirm: (reason: string, force: boolean) => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState("");
  const [force, setForce] = useState(false);
  // The latest callback, without reopening the dialog on every render.
  const onClose = useRef(props.onClose);
  onClose.current = props.onClose;
  useEffect(() => {
    const dialog = ref.current;
    if (dialog === null) return;
    const opener = document.activeElement as HTMLElement | null;
    dialog.showModal();
    const cancel = (): void => onClose.current();
    dialog.addEventListener("close", cancel);
    return () => {
      dialog.removeEventListener("close", cancel);
      if (dialog.open) dialog.close();
      opener?.focus();
    };
  }, []);
  const a = props.action;
  return (
    <dialog ref={ref} aria-labelledby="confirm-h" aria-describedby="confirm-d" class="confirm">
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          props.onConfirm(reason, force);
        }}
      >
        <h2 id="confirm-h">{a.title}?</h2>
        <p id="confirm-d">{a.description}</p>
        {a.reason && (
          <>
            <label for="confirm-reason">Reason (recorded in the audit log)</label>
            <input
              id="confirm-reason"
              value={reason}
              autocomplete="off"
              onInput={(e) => setReason((e.target as HTMLInputElement).value)}
            />
          </>
        )}
        {a.forceField !== undefined && (
          <p class="check">
            <input
              id="confirm-force"
              type="checkbox"
              checked={force}
              disabled={!props.admin}
              aria-describedby="confirm-force-help"
              onChange={(e) => setForce((e.target as HTMLInputElement).checked)}
            />
            <label for="confirm-force">
              {a.forceField === "force" ? "Force (override the safety checks)" : "Override the safety rules"}
            </label>
            <span id="confirm-force-help" class="small">
              {props.admin ? " Admin only; audited with the reason." : " Needs the admin role."}
            </span>
          </p>
        )}
        <div class="actions">
          <button type="submit" class={force ? "danger" : ""}>
            {a.confirm}
          </button>
          <button type="button" class="secondary" onClick={() => props.onClose()}>
            Cancel
          </button>
        </div>
      </form>
    </dialog>
  );
}
