-- One source.endpoint_rules entry: every match of its pattern replaced (regexp_replace, 'g').
regexp_replace({value}, {pattern}, {replace}, 'g')
