-- One endpoint's days from the rollup.
SELECT day,
       request_count AS requests,
       total_response_time AS total_ms,
       response_count AS responses,
       min_response_time AS min_ms,
       max_response_time AS max_ms,
       error_count AS errors,
       status_2xx, status_3xx, status_4xx, status_5xx, status_other
FROM {view}
WHERE endpoint = %(endpoint)s AND day >= %(from_day)s AND day <= %(to_day)s
ORDER BY 1
