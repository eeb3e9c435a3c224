// A real OpenID Connect provider (the certified `oidc-provider` package) for Docket's single
// sign-on tests. Started by tests/identity/conftest.py on 127.0.0.1:
//   node provider.mjs PORT USERS_JSON CLIENT_ID CLIENT_SECRET REDIRECT_URI
// USERS_JSON maps a login to {"name", "groups"}; it is read at every sign-in, so a test can remove
// someone from a group between two sign-ins. Its sign-in form is the package's development form
// (any password); a login missing from USERS_JSON has no account.
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const [port, usersFile, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const users = () => JSON.parse(readFileSync(usersFile, 'utf8'));

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  cookies: { keys: ['docket-test-oidc-provider-cookie-key'] },
  async findAccount(ctx, id) {
    const user = users()[id];
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        const now = users()[id] || { groups: [] };
        return { sub: id, preferred_username: id, name: now.name || id, email: `${id}@example.test`, groups: now.groups };
      },
    };
  },
  // First-party client: no consent screen (the grant covers what Docket asks for).
  async loadExistingGrant(ctx) {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile email groups');
    grant.addOIDCClaims(['preferred_username', 'name', 'email', 'groups']);
    await grant.save();
    return grant;
  },
});
provider.proxy = false;
provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
