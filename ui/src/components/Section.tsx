/** The frame every dashboard panel shares, so each is a labelled landmark the navigation links to. */

import type { ComponentChildren } from "preact";

/** A panel: a `<section>` named by its heading (`${id}-h`), with room beside the heading for `extra`. */
export function Section(props: {
  id: string;
  title: string;
  children: ComponentChildren;
  extra?: ComponentChildren;
  /** Spans both columns on a wide screen. */
  wide?: boolean;
}) {
  return (
    <section id={props.id} aria-labelledby={`${props.id}-h`} class={props.wide ? "panel wide" : "panel"}>
      <div class="panel-head">
        <h2 id={`${props.id}-h`}>{props.title}</h2>
        {props.extra}
      </div>
      {props.children}
    </section>
  );
}
