CREATE VIEW {view}{with_options} AS {definition}
