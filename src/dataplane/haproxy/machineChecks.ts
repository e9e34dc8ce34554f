/**
 * What a fleet file is checked against on this machine (see MachineChecks): where the haproxy
 * binary is. Used wherever a file is about to be run: `validate`, `diff`, `up`, `apply`.
 */

import type { MachineChecks } from "../../spec/loadFleet.ts";
import { findHaproxy } from "./haproxyProcess.ts";

/** This machine, as it is now. */
export const thisMachine: MachineChecks = { haproxyBinary: () => findHaproxy() };
