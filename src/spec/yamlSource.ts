import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
} from "yaml";

/** One step into a YAML tree: a mapping key or a sequence index (zod issue paths have this shape). */
export type PathSegment = string | number;

/**
 * Which node of a path an error points at: the `value` at the path, the `key` that names it, or
 * the `parent` mapping (for a key that is missing, so has no node of its own).
 */
export type PathTarget = "value" | "key" | "parent";

/** A 1-based source position. */
export interface SourcePosition {
  line: number;
  col: number;
}

/** A YAML syntax problem, positioned. */
export interface YamlSyntaxError extends SourcePosition {
  message: string;
}

type ParsedDocument = Document.Parsed;

/**
 * A parsed YAML document that remembers where every node came from, so that a problem found
 * later on the plain data (by path) can be reported at its line and column.
 */
export class YamlSource {
  /** The document as plain data; mapping keys are always strings. */
  readonly data: unknown;
  readonly #doc: ParsedDocument;
  readonly #lines: LineCounter;

  constructor(doc: ParsedDocument, lines: LineCounter) {
    this.#doc = doc;
    this.#lines = lines;
    this.data = doc.toJS();
  }

  /**
   * Where the node at `path` starts. A path that leads past the document (a missing key, a
   * defaulted value) is positioned at the deepest node that does exist.
   */
  positionOf(path: readonly PathSegment[], target: PathTarget): SourcePosition {
    const steps = target === "parent" ? path.slice(0, -1) : path;
    let node: Node | null = this.#resolve(this.#doc.contents);
    let offset = node?.range?.[0] ?? 0;
    for (const [index, segment] of steps.entries()) {
      const child = this.#child(node, segment);
      if (child === undefined) break;
      const isLast = index === steps.length - 1;
      const keyOffset = isPair(child) ? (child.key as Node | null)?.range?.[0] : undefined;
      const valueNode = isPair(child) ? this.#resolve(child.value as Node | null) : this.#resolve(child);
      const valueOffset = isEmptyScalar(valueNode) ? undefined : valueNode?.range?.[0];
      // An empty value (`command:`) has no text of its own: its key is the better place to point.
      offset = (isLast && target === "key" ? keyOffset : (valueOffset ?? keyOffset)) ?? offset;
      node = valueNode;
    }
    return this.#position(offset);
  }

  #position(offset: number): SourcePosition {
    const { line, col } = this.#lines.linePos(offset);
    return { line, col };
  }

  #child(node: Node | null, segment: PathSegment): Pair | Node | undefined {
    if (isMap(node)) {
      return node.items.find((pair) => isScalar(pair.key) && String(pair.key.value) === String(segment));
    }
    if (isSeq(node) && typeof segment === "number") {
      return (node.items[segment] as Node | undefined) ?? undefined;
    }
    return undefined;
  }

  #resolve(node: Node | null | undefined): Node | null {
    if (node === undefined || node === null) return null;
    if (isAlias(node)) return (node.resolve(this.#doc) as Node | undefined) ?? null;
    return node;
  }
}

function isEmptyScalar(node: Node | null): boolean {
  const range = isScalar(node) && node.value === null ? node.range : undefined;
  return range !== undefined && range !== null && range[0] === range[1];
}

/**
 * Parses YAML text into a {@link YamlSource}, or the syntax errors with positions. Duplicate keys
 * and multiple documents are errors; mapping keys are read as strings (`1.0:` stays `"1.0"`).
 */
export function parseYamlSource(
  text: string,
): { ok: true; source: YamlSource } | { ok: false; errors: YamlSyntaxError[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter: lines,
    keepSourceTokens: true,
    prettyErrors: false,
    stringKeys: true,
    uniqueKeys: true,
  });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((error) => {
        const { line, col } = lines.linePos(error.pos[0]);
        return { line, col, message: error.message };
      }),
    };
  }
  return { ok: true, source: new YamlSource(doc, lines) };
}
