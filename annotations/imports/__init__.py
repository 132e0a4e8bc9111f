"""Importing files: `parse` reads and checks a whole file without Django (errors name the file, line and
field), `write` stores what was parsed. A bad file changes nothing; importing it again adds nothing."""
