-- A detached partition whose rows the rollup now counts, dropped.
DROP TABLE {partition}
