/**
 * Where a failed domain's load lands: on the targets' spare capacity under the ceiling, in
 * proportion to it, so every target reaches the ceiling at the same moment (and targets that start
 * equally busy stay equally busy). Load that does not fit goes above the ceiling in proportion to
 * capacity: that is the overflow the plan must add instances for, or shed.
 */

/** What the arithmetic needs of one target instance. */
export interface Slot {
  capacityRps: number;
  loadRps: number;
}

/** Requests/s an instance can still take before it passes `ceiling`. */
export function spareRps(slot: Slot, ceiling: number): number {
  return Math.max(0, ceiling * slot.capacityRps - slot.loadRps);
}

/** Requests/s an instance already serves above `ceiling`, before anything moves. */
export function excessRps(slot: Slot, ceiling: number): number {
  return Math.max(0, slot.loadRps - ceiling * slot.capacityRps);
}

export function totalSpareRps(slots: readonly Slot[], ceiling: number): number {
  let total = 0;
  for (const slot of slots) total += spareRps(slot, ceiling);
  return total;
}

export function totalExcessRps(slots: readonly Slot[], ceiling: number): number {
  let total = 0;
  for (const slot of slots) total += excessRps(slot, ceiling);
  return total;
}

/**
 * The share of `movedRps` each slot takes (same order as `slots`). Up to the total spare it is in
 * proportion to each slot's spare; beyond it every slot is full and the rest is spread in proportion
 * to capacity. With no slots (or no capacity at all) nothing can be placed and every share is 0.
 */
export function spreadMovedLoad(slots: readonly Slot[], ceiling: number, movedRps: number): number[] {
  const spare = totalSpareRps(slots, ceiling);
  if (movedRps <= spare) {
    return slots.map((slot) => (spare > 0 ? (movedRps * spareRps(slot, ceiling)) / spare : 0));
  }
  let capacity = 0;
  for (const slot of slots) capacity += slot.capacityRps;
  const overflow = movedRps - spare;
  return slots.map(
    (slot) => spareRps(slot, ceiling) + (capacity > 0 ? (overflow * slot.capacityRps) / capacity : 0),
  );
}
