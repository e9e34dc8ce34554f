/** Entry point: renders the dashboard into the page the controller serves at `/`. */

import { render } from "preact";
import { App } from "./app.tsx";
import "./style.css";

const root = document.getElementById("app");
if (root !== null) render(<App />, root);
