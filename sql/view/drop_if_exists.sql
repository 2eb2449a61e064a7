DROP {kind} IF EXISTS {view}
