// Who is signed in, and what that role may do: the pages offer only what it allows.

const RANK = { viewer: 1, technician: 2, admin: 3 };

/** GET /me's answer ({role, site, name}) while someone is signed in, else null. */
export const session = { me: null };

export function isDashboardRole(role) {
  return role in RANK;
}

/** True when the signed-in role includes `role` (viewer < technician < admin). */
export function may(role) {
  return Boolean(session.me && RANK[session.me.role] >= RANK[role]);
}
