/** TeamViewer's side of the sync, as tvsync sees it once a SCIM payload has been parsed. */

export const SCIM_USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCIM_GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const SCIM_LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SCIM_PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const SSO_USER_SCHEMA = 'urn:ietf:params:scim:schemas:extension:teamviewer:1.0:SsoUser';

export interface TvUser {
  /** TeamViewer user id, e.g. `u1234567`. */
  id: string;
  userName: string;
  email: string;
  displayName: string;
  active: boolean;
}

export interface TvGroup {
  id: string;
  displayName: string;
  memberIds: string[];
}

/** The attributes of a user tvsync creates. Create-only fields are sent once and never compared. */
export interface NewTvUser {
  userName: string;
  displayName: string;
  active: boolean;
  preferredLanguage?: string;
  ssoCustomerId?: string;
}

/** The only attributes TeamViewer lets us change after create. */
export interface TvUserChanges {
  displayName?: string;
  active?: boolean;
}
