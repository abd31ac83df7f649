-- db_virtuoso 0.2.0 -> 0.3.0
\echo Use "ALTER EXTENSION db_virtuoso UPDATE" to load this file. \quit
