import { describe, expect, it } from 'vitest';
import { SCIM_LIST_SCHEMA } from '../../src/model/teamviewer.js';
import { listResponseSchema, quickListPage, quickScimUser, scimUserSchema } from '../../src/teamviewer/wire.js';

const user = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  id: 'u1',
  userName: 'a@x.test',
  displayName: 'A Person',
  name: { formatted: 'A Person', givenName: 'A' },
  emails: [{ value: 'a@x.test', primary: true, type: 'work' }],
  active: true,
  meta: { resourceType: 'User' },
};

/** Users as a lying or sloppy server might send them: each differs from a good one in one field. */
const variants: unknown[] = [
  user,
  { id: 'u2', userName: 'b@x.test', active: false },
  { ...user, displayName: null, name: null, emails: null },
  { ...user, name: {} },
  { ...user, name: { formatted: null } },
  { ...user, emails: [] },
  { ...user, emails: [{ value: 'a@x.test' }, { value: 'b@x.test', primary: null }] },
  { ...user, id: '' },
  { ...user, id: 7 },
  { ...user, userName: '' },
  { ...user, userName: undefined },
  { ...user, active: 'true' },
  { ...user, active: undefined },
  { ...user, active: null },
  { ...user, displayName: 5 },
  { ...user, name: 'A Person' },
  { ...user, name: [] },
  { ...user, name: { formatted: 1 } },
  { ...user, emails: {} },
  { ...user, emails: [{ primary: true }] },
  { ...user, emails: [{ value: 'a@x.test', primary: 'yes' }] },
  { ...user, emails: [null] },
  null,
  'u1',
  [user],
];

describe('the hand check of SCIM users', () => {
  it.each(variants.map((v, i) => [i, v]))('variant %i: accepts only what the schema accepts, as the schema gives it', (_i, value) => {
    const parsed = scimUserSchema.safeParse(value);
    const quick = quickScimUser(value);
    if (!parsed.success) expect(quick).toBeUndefined();
    else expect(quick).toStrictEqual(parsed.data);
    // Every well-formed variant is taken by the hand check: the schema stays the slow path only.
    if (parsed.success) expect(quick).toBeDefined();
  });
});

describe('the hand check of SCIM list pages', () => {
  const page = { schemas: [SCIM_LIST_SCHEMA], totalResults: 3, startIndex: 1, itemsPerPage: 2, Resources: [user, variants[1]] };
  const pages: unknown[] = [
    page,
    // JSON has no undefined: a page without items leaves the field out.
    { schemas: page.schemas, totalResults: 0 },
    { ...page, Resources: null },
    { ...page, totalResults: 0, Resources: [] },
    { ...page, schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'] },
    { ...page, schemas: [SCIM_LIST_SCHEMA, 7] },
    { ...page, schemas: undefined },
    { ...page, totalResults: -1 },
    { ...page, totalResults: 1.5 },
    { ...page, totalResults: '3' },
    { ...page, totalResults: Number.NaN },
    { ...page, Resources: {} },
    { ...page, Resources: [user, { ...user, active: 'no' }] },
    { status: '500', detail: 'try later' },
    [],
  ];
  const schema = listResponseSchema(scimUserSchema);

  it.each(pages.map((p, i) => [i, p]))('page %i: accepts only what the schema accepts, as the schema gives it', (_i, body) => {
    const parsed = schema.safeParse(body);
    const quick = quickListPage(body, quickScimUser);
    if (!parsed.success) expect(quick).toBeUndefined();
    else expect(quick).toStrictEqual(parsed.data);
    if (parsed.success) expect(quick).toBeDefined();
  });
});
