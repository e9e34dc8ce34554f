/** A node that can sit in one {@link LinkedQueue} at a time. */
export interface Linked<N> {
  prev: N | null;
  next: N | null;
  /** Whether the node is in a queue now (so removing twice is harmless). */
  queued: boolean;
}

/**
 * An intrusive FIFO list: the links live in the nodes, so push, shift, pop and removing any node
 * (a waiter whose client went away) are all O(1) and allocate nothing.
 */
export class LinkedQueue<N extends Linked<N>> {
  head: N | null = null;
  tail: N | null = null;
  size = 0;

  push(node: N): void {
    node.prev = this.tail;
    node.next = null;
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    node.queued = true;
    this.size++;
  }

  /** Remove and return the oldest node. */
  shift(): N | null {
    const node = this.head;
    if (node) this.remove(node);
    return node;
  }

  /** Remove and return the newest node. */
  pop(): N | null {
    const node = this.tail;
    if (node) this.remove(node);
    return node;
  }

  /** Remove `node`, which must be in this queue or in none. */
  remove(node: N): void {
    if (!node.queued) return;
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = null;
    node.next = null;
    node.queued = false;
    this.size--;
  }
}
