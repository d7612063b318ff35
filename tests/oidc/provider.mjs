// panva's oidc-provider on 127.0.0.1, for tests/test_auth_oidc_provider.py.
//
//   node provider.mjs '<config JSON>'
//
// config: {client: {client_id, client_secret, redirect_uris}, conformIdTokenClaims: bool,
//          accounts: {<login>: {<claims>..., userinfo_sub?: "<a sub UserInfo answers instead>"}}}
// It listens on a free port and prints one line, {"issuer": "http://127.0.0.1:<port>"}, when ready.
//
// The login and consent steps are this script's own interaction handler (no HTML forms): a GET of
// /interaction/<uid>?login=<account> signs that account in, and the next /interaction/<uid> grants
// every scope and claim the client asked for. Everything else is oidc-provider's own code.
import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2]);
const accounts = config.accounts;

function account(id) {
  const { userinfo_sub: userinfoSub, ...claims } = accounts[id];
  return {
    accountId: id,
    async claims(use) {
      return { ...claims, sub: use === 'userinfo' && userinfoSub ? userinfoSub : id };
    },
  };
}

async function interact(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  let result;
  if (prompt.name === 'login') {
    const login = new URL(req.url, 'http://localhost').searchParams.get('login');
    result = login in accounts
      ? { login: { accountId: login } }
      : { error: 'access_denied', error_description: `no test account ${login}` };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const provider = new Provider(issuer, {
    clients: [{ ...config.client, grant_types: ['authorization_code'], response_types: ['code'] }],
    findAccount: async (ctx, id) => (id in accounts ? account(id) : undefined),
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    conformIdTokenClaims: config.conformIdTokenClaims,
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' }] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  });
  const handle = provider.callback();
  server.on('request', (req, res) => {
    if (!req.url.startsWith('/interaction/')) return handle(req, res);
    interact(provider, req, res).catch((err) => {
      res.statusCode = 400;
      res.setHeader('Content-Type', 'text/plain');
      res.end(`interaction failed: ${err}`);
    });
  });
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
