-- Undo sqlite_up.sql: tables from the leaves of the foreign-key graph inwards, so that no
-- drop trips a foreign key. No IF EXISTS: a missing table means the schema is not the one
-- this migration made, and that should stop the rollback rather than pass unnoticed.

DROP TABLE worker_config;
DROP TABLE worker_heartbeats;
DROP TABLE task_events;
DROP TABLE executions;
DROP TABLE task_dependencies;
DROP TABLE tasks;
DROP TABLE agent_capabilities;
DROP TABLE agents;
