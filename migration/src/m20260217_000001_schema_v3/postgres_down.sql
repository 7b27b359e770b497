-- Undo postgres_up.sql: tables from the leaves of the foreign-key graph inwards, then the
-- enum types they used. No IF EXISTS: a missing object means the schema is not the one this
-- migration made, and that should stop the rollback rather than pass unnoticed.

DROP TABLE worker_config;
DROP TABLE worker_heartbeats;
DROP TABLE task_events;
DROP TABLE executions;
DROP TABLE task_dependencies;
DROP TABLE tasks;
DROP TABLE agent_capabilities;
DROP TABLE agents;

DROP TYPE discovery_method;
DROP TYPE capability_source;
DROP TYPE agent_kind;
DROP TYPE interaction_mode;
DROP TYPE execution_status;
DROP TYPE task_status;
