// How a page finds its elements in index.html: by id, typed, and a missing
// one fails at once naming the page and the id (a bug in index.html, not a
// state to handle at run time).

export interface PageElements {
  /** The element with `id`, as `T`; throws "<page>: missing #<id>". */
  get<T extends HTMLElement = HTMLElement>(id: string): T;
  /** The table with `id` and its (first) body; throws when either is missing. */
  table(id: string): { table: HTMLTableElement; body: HTMLTableSectionElement };
}

export function pageElements(doc: Document, page: string): PageElements {
  const get = <T extends HTMLElement = HTMLElement>(id: string): T => {
    const found = doc.getElementById(id);
    if (!found) throw new Error(`${page}: missing #${id}`);
    return found as T;
  };
  return {
    get,
    table(id: string) {
      const table = get<HTMLTableElement>(id);
      const body = table.tBodies[0];
      if (!body) throw new Error(`${page}: #${id} has no tbody`);
      return { table, body };
    },
  };
}
