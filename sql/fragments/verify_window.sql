{since} AND {day} <= %(to_day)s AND {timestamp} <= %(watermark)s
