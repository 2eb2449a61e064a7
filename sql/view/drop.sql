DROP {kind} {view}
