// Who is signed in: the answer of GET /auth/check, shared by every page.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export const AuthContext = createContext(null);
export const useAuth = () => useContext(AuthContext);

export const PERMS = {
  'tasks:execute': 'run tasks',
  'tasks:save': 'save custom tasks',
  'models:download': 'download and manage models',
  'admin:read': 'read keys, logs and settings',
  'admin:write': 'change keys and settings',
};

export function can(auth, perm) {
  return !!auth?.permissions?.includes(perm);
}

// Why an action is unavailable, or '' when it is allowed.
export function lacks(auth, perm) {
  return can(auth, perm) ? '' : `Your key lacks the ${perm} permission (${PERMS[perm]}).`;
}
