-- The tables as the release before migrations left them: each service ran create_all
-- on its metadata at start (then its idempotent ALTER TABLE ... IF NOT EXISTS, already
-- part of that metadata). No version table. Produced from that release's table modules.

CREATE SCHEMA audit;
SET search_path TO audit;
CREATE TABLE call_events (
	id VARCHAR(64) NOT NULL,
	tenant_id VARCHAR(128) NOT NULL,
	call_id VARCHAR(128) NOT NULL,
	type VARCHAR(64) NOT NULL,
	source VARCHAR(256) NOT NULL,
	time TIMESTAMP WITH TIME ZONE NOT NULL,
	stream_seq BIGINT,
	data JSONB NOT NULL,
	received_at TIMESTAMP WITH TIME ZONE NOT NULL,
	chain_seq INTEGER,
	hash BYTEA,
	PRIMARY KEY (id)
);
CREATE INDEX call_events_by_call ON call_events (tenant_id, call_id, time);
CREATE UNIQUE INDEX call_events_chain ON call_events (tenant_id, call_id, chain_seq);
CREATE TABLE calls (
	tenant_id VARCHAR(128) NOT NULL,
	call_id VARCHAR(128) NOT NULL,
	status VARCHAR(32) NOT NULL,
	direction VARCHAR(16),
	provider VARCHAR(32),
	agent_id VARCHAR(128),
	from_number VARCHAR(64),
	to_number VARCHAR(64),
	initiated_at TIMESTAMP WITH TIME ZONE,
	started_at TIMESTAMP WITH TIME ZONE,
	ended_at TIMESTAMP WITH TIME ZONE,
	duration_s FLOAT,
	ended_reason VARCHAR(32),
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	chain_head BYTEA,
	chain_length INTEGER DEFAULT '0' NOT NULL,
	PRIMARY KEY (tenant_id, call_id)
);

CREATE SCHEMA campaigns;
SET search_path TO campaigns;
CREATE TABLE attempts (
	attempt_id VARCHAR(64) NOT NULL,
	call_id VARCHAR(64) NOT NULL,
	tenant_id VARCHAR(128) NOT NULL,
	campaign_id VARCHAR(64) NOT NULL,
	contact_id BIGINT NOT NULL,
	attempt_no INTEGER NOT NULL,
	from_number VARCHAR(32),
	status VARCHAR(16) NOT NULL,
	claimed_by VARCHAR(160),
	claimed_at TIMESTAMP WITH TIME ZONE,
	lease_until TIMESTAMP WITH TIME ZONE,
	dialed_at TIMESTAMP WITH TIME ZONE NOT NULL,
	answered_at TIMESTAMP WITH TIME ZONE,
	ended_at TIMESTAMP WITH TIME ZONE,
	outcome VARCHAR(16),
	end_reason VARCHAR(32),
	amd VARCHAR(32),
	duration_s FLOAT,
	recording_id VARCHAR(64),
	disposition VARCHAR(64),
	success VARCHAR(16),
	PRIMARY KEY (attempt_id),
	CONSTRAINT attempts_once_per_number UNIQUE (contact_id, attempt_no),
	UNIQUE (call_id)
);
CREATE INDEX attempts_by_campaign ON attempts (campaign_id, outcome);
CREATE INDEX attempts_live ON attempts (tenant_id, status);
CREATE TABLE campaigns (
	tenant_id VARCHAR(128) NOT NULL,
	campaign_id VARCHAR(64) NOT NULL,
	status VARCHAR(16) NOT NULL,
	spec JSONB NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	pace_tokens FLOAT DEFAULT '0' NOT NULL,
	pace_at FLOAT DEFAULT '0' NOT NULL,
	served_at FLOAT DEFAULT '0' NOT NULL,
	PRIMARY KEY (tenant_id, campaign_id)
);
CREATE TABLE contacts (
	contact_id BIGSERIAL NOT NULL,
	tenant_id VARCHAR(128) NOT NULL,
	campaign_id VARCHAR(64) NOT NULL,
	phone VARCHAR(32) NOT NULL,
	region VARCHAR(8),
	zones TEXT[] NOT NULL,
	context JSONB NOT NULL,
	line INTEGER,
	state VARCHAR(16) NOT NULL,
	attempts INTEGER DEFAULT '0' NOT NULL,
	next_at TIMESTAMP WITH TIME ZONE NOT NULL,
	outcome VARCHAR(16),
	duration_s FLOAT,
	recording_id VARCHAR(64),
	last_call_id VARCHAR(64),
	disposition VARCHAR(64),
	success VARCHAR(16),
	last_attempt_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (contact_id),
	CONSTRAINT contacts_one_per_number UNIQUE (tenant_id, campaign_id, phone)
);
CREATE INDEX contacts_due ON contacts (campaign_id, state, next_at, contact_id);
CREATE TABLE dnc (
	tenant_id VARCHAR(128) NOT NULL,
	scope VARCHAR(64) NOT NULL,
	phone VARCHAR(32) NOT NULL,
	reason VARCHAR(256),
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (tenant_id, scope, phone)
);
CREATE TABLE outbox (
	seq BIGSERIAL NOT NULL,
	subject TEXT NOT NULL,
	msg_id VARCHAR(64) NOT NULL,
	body BYTEA NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (seq)
);
CREATE TABLE uploads (
	upload_id VARCHAR(64) NOT NULL,
	tenant_id VARCHAR(128) NOT NULL,
	campaign_id VARCHAR(64) NOT NULL,
	header TEXT,
	rows INTEGER DEFAULT '0' NOT NULL,
	loaded INTEGER DEFAULT '0' NOT NULL,
	merged INTEGER DEFAULT '0' NOT NULL,
	dnc INTEGER DEFAULT '0' NOT NULL,
	rejected INTEGER DEFAULT '0' NOT NULL,
	errors JSONB DEFAULT '[]' NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (upload_id)
);

CREATE SCHEMA edge;
SET search_path TO edge;
CREATE TABLE idempotency_keys (
	tenant_id VARCHAR(128) NOT NULL,
	route VARCHAR(64) NOT NULL,
	key VARCHAR(255) NOT NULL,
	body_hash VARCHAR(64) NOT NULL,
	status INTEGER,
	response BYTEA,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (tenant_id, route, key)
);
CREATE TABLE tenants (
	tenant_id VARCHAR(128) NOT NULL,
	name VARCHAR(256) NOT NULL,
	disabled BOOLEAN NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (tenant_id)
);
CREATE TABLE usage_items (
	event_id VARCHAR(64) NOT NULL,
	metric VARCHAR(32) NOT NULL,
	tenant_id VARCHAR(128) NOT NULL,
	call_id VARCHAR(128) NOT NULL,
	day DATE NOT NULL,
	dimension VARCHAR(160) NOT NULL,
	amount FLOAT NOT NULL,
	PRIMARY KEY (event_id, metric)
);
CREATE INDEX usage_items_call ON usage_items (tenant_id, call_id, metric);
CREATE INDEX usage_items_tenant_day ON usage_items (tenant_id, day);
CREATE TABLE api_keys (
	key_id VARCHAR(16) NOT NULL,
	tenant_id VARCHAR(128) NOT NULL,
	name VARCHAR(256) NOT NULL,
	secret_hash TEXT NOT NULL,
	scopes VARCHAR(32)[] NOT NULL,
	rate_limit_per_minute INTEGER NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	revoked_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (key_id),
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_api_keys_tenant_id ON api_keys (tenant_id);
CREATE TABLE provider_accounts (
	tenant_id VARCHAR(128) NOT NULL,
	provider VARCHAR(32) NOT NULL,
	ciphertext BYTEA NOT NULL,
	secret_names VARCHAR(64)[] NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (tenant_id, provider),
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE TABLE tenant_limits (
	tenant_id VARCHAR(128) NOT NULL,
	calls_per_minute INTEGER,
	allowed_countries VARCHAR(2)[],
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (tenant_id),
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE TABLE webhooks (
	webhook_id VARCHAR(32) NOT NULL,
	tenant_id VARCHAR(128) NOT NULL,
	url TEXT NOT NULL,
	event_types VARCHAR(128)[] NOT NULL,
	description VARCHAR(256) NOT NULL,
	enabled BOOLEAN NOT NULL,
	secret_ciphertext BYTEA NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (webhook_id),
	FOREIGN KEY(tenant_id) REFERENCES tenants (tenant_id)
);
CREATE INDEX ix_webhooks_tenant_id ON webhooks (tenant_id);
CREATE TABLE webhook_deliveries (
	delivery_id VARCHAR(64) NOT NULL,
	webhook_id VARCHAR(32) NOT NULL,
	tenant_id VARCHAR(128) NOT NULL,
	call_id VARCHAR(128) NOT NULL,
	event_id VARCHAR(64) NOT NULL,
	event_type VARCHAR(128) NOT NULL,
	seq BIGINT NOT NULL,
	body BYTEA NOT NULL,
	status VARCHAR(16) NOT NULL,
	attempts INTEGER NOT NULL,
	budget INTEGER NOT NULL,
	next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL,
	lease_until TIMESTAMP WITH TIME ZONE,
	last_status_code INTEGER,
	last_error VARCHAR(256),
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	finished_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (delivery_id),
	CONSTRAINT webhook_deliveries_once UNIQUE (webhook_id, event_id),
	FOREIGN KEY(webhook_id) REFERENCES webhooks (webhook_id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (webhook_id, call_id, seq);
CREATE TABLE webhook_attempts (
	delivery_id VARCHAR(64) NOT NULL,
	attempt INTEGER NOT NULL,
	at TIMESTAMP WITH TIME ZONE NOT NULL,
	status_code INTEGER,
	error VARCHAR(256),
	duration_ms FLOAT NOT NULL,
	PRIMARY KEY (delivery_id, attempt),
	FOREIGN KEY(delivery_id) REFERENCES webhook_deliveries (delivery_id) ON DELETE CASCADE
);

CREATE SCHEMA orchestrator;
SET search_path TO orchestrator;
CREATE TABLE caller_memory (
	tenant_id VARCHAR(128) NOT NULL,
	number VARCHAR(64) NOT NULL,
	profile JSONB NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT caller_memory_pk PRIMARY KEY (tenant_id, number)
);
CREATE TABLE resource_versions (
	kind VARCHAR(16) NOT NULL,
	owner VARCHAR(128) NOT NULL,
	name VARCHAR(128) NOT NULL,
	version INTEGER NOT NULL,
	body JSONB NOT NULL,
	secret BYTEA,
	digest VARCHAR(64) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT resource_versions_pk PRIMARY KEY (kind, owner, name, version)
);
CREATE TABLE resources (
	kind VARCHAR(16) NOT NULL,
	owner VARCHAR(128) NOT NULL,
	name VARCHAR(128) NOT NULL,
	current_version INTEGER NOT NULL,
	archived BOOLEAN DEFAULT 'false' NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	CONSTRAINT resources_pk PRIMARY KEY (kind, owner, name)
);

RESET search_path;
