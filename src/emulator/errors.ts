/** A failure a handler or the store throws; the server answers it as a SCIM error body. */
export class ScimError extends Error {
  readonly status: number;
  readonly scimType: string | undefined;

  constructor(status: number, detail: string, scimType?: string) {
    super(detail);
    this.name = 'ScimError';
    this.status = status;
    this.scimType = scimType;
  }
}

/** A 405, with the methods the resource does allow (sent as the Allow header). */
export class MethodNotAllowed extends ScimError {
  readonly allow: string;

  constructor(allow: string, detail = `Method not allowed; allowed: ${allow}`) {
    super(405, detail);
    this.allow = allow;
  }
}
