-- Each raw endpoint normalized once per rule (a fingerprint of source.endpoint_ids and
-- source.endpoint_rules): the rollup and the reports join on it instead of running regular
-- expressions on every row. A cache: a path it lacks is normalized as it is read.
CREATE TABLE IF NOT EXISTS epstats.endpoint_map (
    rule bigint NOT NULL,
    raw text NOT NULL,
    endpoint text NOT NULL,
    PRIMARY KEY (rule, raw)
)
