// A real OpenID provider (panva/oidc-provider) for Gatehouse's identity
// integration tests. It listens on 127.0.0.1 only, on the port given as the
// first argument or in $PORT, and prints "ready <issuer>" once it serves.
//
// Clients use the client_credentials grant (no browser needed). A resource
// indicator (RFC 8707) is configured so access tokens are RFC 9068 JWTs that
// Gatehouse can verify against the provider's discovery document and JWKS.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node server.js PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

// The resource indicator clients ask for, and the audience its tokens carry.
const RESOURCE = 'urn:gatehouse';
const AUDIENCE = 'gatehouse';

// A fresh signing key per run: nothing secret is kept in the repository.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `test-${Date.now()}`, use: 'sig', alg: 'RS256' };

// Claims added to access tokens per client, standing in for what a real IdP
// would take from its user directory.
const extraClaims = {
  'ci-runner': { actor: 'alice@example.com', repository: 'acme/payments' },
  'alice-cli': { email: 'alice@example.com', groups: ['dba', 'oncall'] },
  'mallory-cli': { email: 'mallory@example.com', groups: ['interns'] },
};

const client = (id) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_post',
  scope: 'read write ddl admin',
});

const provider = new Provider(issuer, {
  clients: Object.keys(extraClaims).map(client),
  jwks: { keys: [jwk] },
  scopes: ['openid', 'read', 'write', 'ddl', 'admin'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) {
          throw new Error(`unknown resource ${resourceIndicator}`);
        }
        return {
          scope: 'read write ddl admin',
          audience: AUDIENCE,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  extraTokenClaims: async (ctx, token) => extraClaims[token.clientId] || {},
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
server.on('error', (err) => {
  console.error(`listen: ${err.message}`);
  process.exit(1);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
