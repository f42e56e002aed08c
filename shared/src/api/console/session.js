// What this tab is signed in with and looking at. Session storage, not local storage: a
// reload signs in again and reopens the environment, but the token goes with the tab.
const TOKEN_KEY = 'data-export-console.token';
const ENV_KEY = 'data-export-console.env';

// One object rather than exported variables, since a module cannot assign another's.
export const session = {
  token: null,
  readOnly: false,
  env: null, // {project, environment} being shown
};

export const savedToken = () => sessionStorage.getItem(TOKEN_KEY);
export const savedEnv = () => JSON.parse(sessionStorage.getItem(ENV_KEY) || 'null');

// Kept only once the API has accepted it, so a mistyped token is not tried again on reload.
export function keepToken() {
  sessionStorage.setItem(TOKEN_KEY, session.token);
}

export function showEnv(env) {
  session.env = env;
  sessionStorage.setItem(ENV_KEY, JSON.stringify(env));
}

export function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(ENV_KEY);
  session.token = null;
  session.env = null;
  session.readOnly = false;
}
