-- A trigger, rule or extended statistics object of the replaced relation, created again as
-- the server printed it (pg_get_triggerdef, pg_get_ruledef, pg_get_statisticsobjdef): in the
-- swap, once the replacement has the old one's name, which the text names.
{definition}
