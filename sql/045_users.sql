-- Dashboard and API users (issue 14): people log in with a username and password and act with
-- their account's role; API keys stay for programs. Only an Argon2id hash of each password is
-- stored (argon2-cffi's PasswordHasher). Five failed logins in a row lock an account for
-- 15 minutes (pisman/users.py, docs/operations.md).
CREATE TABLE app_user (
  username        text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
  display_name    text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
  role            text NOT NULL CHECK (role IN ('viewer', 'planner', 'admin')),
  password_hash   text NOT NULL,
  disabled_at     timestamptz,
  failed_attempts integer NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
  locked_until    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_login_at   timestamptz
);

-- A user's city limits: no row means every city of the deployment, rows limit the user to
-- those cities.
CREATE TABLE app_user_city (
  username text NOT NULL REFERENCES app_user ON DELETE CASCADE,
  city_id  text NOT NULL REFERENCES city ON DELETE CASCADE,
  PRIMARY KEY (username, city_id)
);

-- Login sessions: only a SHA-256 of the token is stored; expires_at slides forward on use.
CREATE TABLE user_session (
  token_hash   text PRIMARY KEY,
  username     text NOT NULL REFERENCES app_user ON DELETE CASCADE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  revoked_at   timestamptz
);
CREATE INDEX user_session_username ON user_session (username);
