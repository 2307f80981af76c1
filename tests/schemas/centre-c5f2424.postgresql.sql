-- The centre's tables as release c5f2424 created them on postgresql (its models'
-- create_all, as SQLAlchemy emitted it), for tests/test_centre_migrations.py.

CREATE TABLE events (
	id SERIAL NOT NULL,
	device_id VARCHAR(32) NOT NULL,
	seq BIGINT NOT NULL,
	kind VARCHAR(16) NOT NULL,
	type VARCHAR(32) NOT NULL,
	event_time_ms BIGINT NOT NULL,
	device_time_ms BIGINT,
	gateway_time_ms BIGINT NOT NULL,
	received_ms BIGINT NOT NULL,
	age_ms BIGINT NOT NULL,
	skew_ms BIGINT,
	data JSON NOT NULL,
	gateway VARCHAR(32) NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_events_device_seq UNIQUE (device_id, seq)
);

CREATE INDEX ix_events_device_id ON events (device_id);

CREATE TABLE users (
	id SERIAL NOT NULL,
	username VARCHAR(64) NOT NULL,
	password_hash VARCHAR(255) NOT NULL,
	role VARCHAR(16) NOT NULL,
	display_name VARCHAR(128) NOT NULL,
	active BOOLEAN NOT NULL,
	created_ms BIGINT NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (username)
);

CREATE TABLE grid_cells (
	id SERIAL NOT NULL,
	code VARCHAR(32) NOT NULL,
	name VARCHAR(128) NOT NULL,
	community VARCHAR(128) NOT NULL,
	worker_name VARCHAR(64) NOT NULL,
	worker_phone VARCHAR(32) NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (code)
);

CREATE INDEX ix_grid_cells_community ON grid_cells (community);

CREATE TABLE alarms (
	id SERIAL NOT NULL,
	event_id INTEGER NOT NULL,
	device_id VARCHAR(32) NOT NULL,
	type VARCHAR(32) NOT NULL,
	priority INTEGER NOT NULL,
	state VARCHAR(16) NOT NULL,
	created_ms BIGINT NOT NULL,
	outcome VARCHAR(16),
	dispatched_to VARCHAR(16),
	acked_ms BIGINT,
	verified_ms BIGINT,
	resolved_ms BIGINT,
	PRIMARY KEY (id),
	UNIQUE (event_id),
	FOREIGN KEY(event_id) REFERENCES events (id) ON DELETE RESTRICT
);

CREATE INDEX ix_alarms_state ON alarms (state);

CREATE INDEX ix_alarms_device_id ON alarms (device_id);

CREATE TABLE user_sessions (
	id VARCHAR(64) NOT NULL,
	user_id INTEGER NOT NULL,
	created_ms BIGINT NOT NULL,
	expires_ms BIGINT NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX ix_user_sessions_user_id ON user_sessions (user_id);

CREATE TABLE households (
	id SERIAL NOT NULL,
	code VARCHAR(32) NOT NULL,
	address VARCHAR(255) NOT NULL,
	compound VARCHAR(128) NOT NULL,
	community VARCHAR(128) NOT NULL,
	grid_cell_id INTEGER,
	note TEXT NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (code),
	FOREIGN KEY(grid_cell_id) REFERENCES grid_cells (id) ON DELETE SET NULL
);

CREATE INDEX ix_households_community ON households (community);

CREATE INDEX ix_households_grid_cell_id ON households (grid_cell_id);

CREATE TABLE alarm_audit (
	id SERIAL NOT NULL,
	alarm_id INTEGER NOT NULL,
	at_ms BIGINT NOT NULL,
	user_id INTEGER NOT NULL,
	username VARCHAR(64) NOT NULL,
	action VARCHAR(16) NOT NULL,
	from_state VARCHAR(16) NOT NULL,
	to_state VARCHAR(16) NOT NULL,
	outcome VARCHAR(16),
	dispatched_to VARCHAR(16),
	note TEXT NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(alarm_id) REFERENCES alarms (id),
	FOREIGN KEY(user_id) REFERENCES users (id)
);

CREATE INDEX ix_alarm_audit_alarm_id ON alarm_audit (alarm_id);

CREATE TABLE feedback (
	id SERIAL NOT NULL,
	alarm_id INTEGER NOT NULL,
	device_id VARCHAR(32) NOT NULL,
	seq BIGINT NOT NULL,
	gateway VARCHAR(32) NOT NULL,
	type VARCHAR(16) NOT NULL,
	created_ms BIGINT NOT NULL,
	delivered BOOLEAN NOT NULL,
	delivered_ms BIGINT,
	PRIMARY KEY (id),
	FOREIGN KEY(alarm_id) REFERENCES alarms (id)
);

CREATE INDEX ix_feedback_gateway ON feedback (gateway);

CREATE INDEX ix_feedback_alarm_id ON feedback (alarm_id);

CREATE TABLE contacts (
	id SERIAL NOT NULL,
	household_id INTEGER NOT NULL,
	name VARCHAR(64) NOT NULL,
	phone VARCHAR(32) NOT NULL,
	email VARCHAR(255),
	relation VARCHAR(32) NOT NULL,
	rank INTEGER NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(household_id) REFERENCES households (id) ON DELETE CASCADE
);

CREATE INDEX ix_contacts_household_id ON contacts (household_id);

CREATE TABLE devices (
	device_id VARCHAR(32) NOT NULL,
	type VARCHAR(16) NOT NULL,
	board VARCHAR(32) NOT NULL,
	firmware VARCHAR(32) NOT NULL,
	household_id INTEGER,
	key_ref VARCHAR(64) NOT NULL,
	created_ms BIGINT NOT NULL,
	online BOOLEAN,
	last_seen_ms BIGINT,
	last_heartbeat_ms BIGINT,
	battery_mv INTEGER,
	rssi INTEGER,
	outbox_depth INTEGER,
	PRIMARY KEY (device_id),
	FOREIGN KEY(household_id) REFERENCES households (id) ON DELETE SET NULL
);

CREATE INDEX ix_devices_household_id ON devices (household_id);

CREATE TABLE hazards (
	id SERIAL NOT NULL,
	alarm_id INTEGER NOT NULL,
	device_id VARCHAR(32) NOT NULL,
	type VARCHAR(32) NOT NULL,
	opened_ms BIGINT NOT NULL,
	state VARCHAR(16) NOT NULL,
	rectified_ms BIGINT,
	rectified_by VARCHAR(64),
	rectify_note TEXT NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (alarm_id),
	FOREIGN KEY(alarm_id) REFERENCES alarms (id)
);

CREATE INDEX ix_hazards_device_id ON hazards (device_id);

CREATE INDEX ix_hazards_state ON hazards (state);

CREATE TABLE notifications (
	id SERIAL NOT NULL,
	alarm_id INTEGER NOT NULL,
	step INTEGER NOT NULL,
	role VARCHAR(16) NOT NULL,
	name VARCHAR(64) NOT NULL,
	channel VARCHAR(16) NOT NULL,
	target VARCHAR(255) NOT NULL,
	attempt INTEGER NOT NULL,
	status VARCHAR(16) NOT NULL,
	error TEXT,
	at_ms BIGINT NOT NULL,
	done_ms BIGINT,
	PRIMARY KEY (id),
	CONSTRAINT uq_notifications_attempt UNIQUE (alarm_id, step, channel, attempt),
	FOREIGN KEY(alarm_id) REFERENCES alarms (id)
);

CREATE INDEX ix_notifications_alarm_id ON notifications (alarm_id);

CREATE TABLE device_keys (
	device_id VARCHAR(32) NOT NULL,
	key_hex VARCHAR(128) NOT NULL,
	updated_ms BIGINT NOT NULL,
	PRIMARY KEY (device_id),
	FOREIGN KEY(device_id) REFERENCES devices (device_id) ON DELETE CASCADE
);

CREATE TABLE hazard_restores (
	id SERIAL NOT NULL,
	hazard_id INTEGER NOT NULL,
	event_id INTEGER NOT NULL,
	event_time_ms BIGINT NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(hazard_id) REFERENCES hazards (id),
	UNIQUE (event_id),
	FOREIGN KEY(event_id) REFERENCES events (id)
);

CREATE INDEX ix_hazard_restores_hazard_id ON hazard_restores (hazard_id);
