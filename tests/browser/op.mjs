// A real OpenID Provider (npm `oidc-provider`, an OpenID-certified implementation) standing in
// for DigiD (through a broker) in the browser test. Not written by us: only configured.
//
//   node op.mjs --host 127.0.0.2 --port 0 --client-id otv --client-secret S \
//               --redirect-uri http://127.0.0.1:8080/inloggen/terug
//
// Prints one line `{"ready":true,"issuer":"http://127.0.0.2:PORT"}` on stdout once it listens,
// then serves until it gets SIGTERM or its standard input closes (so it never outlives the test).
//
// One confidential client (client_secret_basic or _post), authorization code only, PKCE (S256)
// required. The login form and consent screen are the library's built-in development
// interactions: any password is accepted, and the login name is the account (see ACCOUNTS).
// The claims otv reads (`bsn`, `birthdate`, `acting_for`, `name`) are released with the
// `openid` scope, in the ID token as well as from userinfo.

import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

import { ACCOUNTS } from './accounts.mjs';

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.2' },
    port: { type: 'string', default: '0' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
  },
});
for (const need of ['client-id', 'client-secret', 'redirect-uri']) {
  if (!args[need]) {
    console.error(`op.mjs: --${need} is required`);
    process.exit(2);
  }
}

const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
  format: 'jwk',
});

const server = http.createServer();
await new Promise((resolve) => server.listen(Number(args.port), args.host, resolve));
const issuer = `http://${args.host}:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      redirect_uris: args['redirect-uri'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
  ],
  // A fresh ES256 signing key for every run (never the library's built-in development keys).
  jwks: { keys: [{ ...signingKey, kid: 'otv-browser-test', use: 'sig', alg: 'ES256' }] },
  pkce: { required: () => true },
  // Release the claims with the `openid` scope that every OpenID Connect login asks for, and
  // put them in the ID token too (not only behind userinfo).
  scopes: ['openid', 'profile'],
  claims: {
    openid: ['sub', 'bsn', 'birthdate', 'acting_for', 'name'],
    profile: ['name', 'birthdate'],
  },
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true }, userinfo: { enabled: true } },
  cookies: { keys: ['otv-browser-test-cookie-key-not-secret'] },
  async findAccount(_ctx, sub) {
    const account = ACCOUNTS[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        const claims = { sub, bsn: account.bsn, birthdate: account.birthdate, name: account.name };
        if (account.acting_for) claims.acting_for = account.acting_for;
        return claims;
      },
    };
  },
});
provider.on('server_error', (_ctx, err) => console.error('op server_error', err));

server.on('request', provider.callback());
console.log(JSON.stringify({ ready: true, issuer }));

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
