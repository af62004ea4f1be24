/** One answer from an outside service, as metrics count it. */
export interface ResponseInfo {
  method: string;
  /** The route template (e.g. /Users/{id}), fit for a metric label: never the ids in it. */
  path: string;
  status: number;
  ms: number;
}
