"""Staff identity: sign-in (passwords with a second factor, or OpenID Connect), API tokens, sessions, audit."""
