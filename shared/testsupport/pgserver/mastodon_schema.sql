-- The subset of Mastodon's database schema that fediops' restore drill reads: the tables and
-- columns of schema_migrations, accounts, users and statuses as Mastodon's db/schema.rb
-- declares them (mastodon/mastodon, schema version 2025_12_17_091936, AGPL-3.0). Written for
-- fediops from those column names and types, not copied: Rails' "datetime" is PostgreSQL's
-- timestamp without time zone (UTC), "string" is character varying. Columns the drill does
-- not read are left out, except the NOT NULL ones that make a row a plausible Mastodon row.
-- Mastodon's timestamp_id() default (lib/mastodon/snowflake.rb) is not reproduced: the seed
-- computes the Snowflake ids itself (milliseconds since the epoch << 16 | sequence).

CREATE TABLE schema_migrations (
    version character varying PRIMARY KEY
);

CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    username character varying DEFAULT '' NOT NULL,
    domain character varying,
    public_key text DEFAULT '' NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    note text DEFAULT '' NOT NULL,
    display_name character varying DEFAULT '' NOT NULL,
    uri character varying DEFAULT '' NOT NULL,
    url character varying,
    locked boolean DEFAULT false NOT NULL,
    suspended_at timestamp without time zone,
    silenced_at timestamp without time zone
);

CREATE TABLE users (
    id bigserial PRIMARY KEY,
    email character varying DEFAULT '' NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    encrypted_password character varying DEFAULT '' NOT NULL,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    approved boolean DEFAULT true NOT NULL,
    confirmed_at timestamp without time zone,
    sign_up_ip inet
);

CREATE TABLE statuses (
    id bigint PRIMARY KEY,
    uri character varying,
    text text DEFAULT '' NOT NULL,
    created_at timestamp without time zone NOT NULL,
    updated_at timestamp without time zone NOT NULL,
    in_reply_to_id bigint,
    reblog_of_id bigint,
    url character varying,
    sensitive boolean DEFAULT false NOT NULL,
    visibility integer DEFAULT 0 NOT NULL,
    spoiler_text text DEFAULT '' NOT NULL,
    reply boolean DEFAULT false NOT NULL,
    language character varying,
    local boolean,
    account_id bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    deleted_at timestamp without time zone
);

CREATE INDEX index_statuses_on_account_id ON statuses (account_id);
CREATE INDEX index_users_on_account_id ON users (account_id);
