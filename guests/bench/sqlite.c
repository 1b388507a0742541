/* SQLite (Debian's static libsqlite3.a): an in-memory table of ROWS rows, then 7 queries.
 * Usage: sqlite [ROWS]  (default 20,000). Prints every query's result rows. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

static void die(sqlite3 *db, const char *what) {
    fprintf(stderr, "sqlite: %s: %s\n", what, sqlite3_errmsg(db));
    exit(1);
}

static void exec(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sqlite: %s: %s\n", sql, err);
        exit(1);
    }
}

static void fill(sqlite3 *db, int rows) {
    static const char *words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"};
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT INTO t(id, name, grp, val) VALUES (?, ?, ?, ?)", -1, &st, NULL))
        die(db, "prepare insert");
    unsigned seed = 12345;
    exec(db, "BEGIN");
    for (int i = 0; i < rows; i++) {
        char name[48];
        seed = seed * 1103515245u + 12345u;
        snprintf(name, sizeof name, "%s-%u", words[(seed >> 16) & 7], (seed >> 8) % 100000);
        sqlite3_bind_int(st, 1, i + 1);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 3, (int)((seed >> 4) % 97));
        sqlite3_bind_double(st, 4, (double)((seed >> 3) % 1000000) / 100.0);
        if (sqlite3_step(st) != SQLITE_DONE) die(db, "insert");
        sqlite3_reset(st);
    }
    exec(db, "COMMIT");
    sqlite3_finalize(st);
}

static void query(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL)) die(db, sql);
    printf("%s\n", sql);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            if (sqlite3_column_type(st, c) == SQLITE_FLOAT) printf(" %.4f", sqlite3_column_double(st, c));
            else printf(" %s", (const char *)sqlite3_column_text(st, c));
        }
        printf("\n");
    }
    if (rc != SQLITE_DONE) die(db, sql);
    sqlite3_finalize(st);
}

int main(int argc, char **argv) {
    int rows = argc > 1 ? atoi(argv[1]) : 20000;
    sqlite3 *db;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) die(db, "open");
    exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL)");
    fill(db, rows);
    query(db, "SELECT count(*), sum(val), min(name), max(name) FROM t");
    query(db, "SELECT grp, count(*), round(avg(val), 2) FROM t GROUP BY grp ORDER BY count(*) DESC, grp LIMIT 5");
    query(db, "SELECT count(*) FROM t WHERE name LIKE 'delta-1%'");
    query(db, "SELECT id, name, val FROM t ORDER BY val DESC, id LIMIT 5");
    exec(db, "CREATE INDEX t_name ON t(name)");
    query(db, "SELECT count(*) FROM t a JOIN t b ON a.name = b.name AND a.id < b.id");
    exec(db, "UPDATE t SET val = val * 2 WHERE grp % 3 = 0");
    query(db, "SELECT grp % 3, round(sum(val), 2) FROM t GROUP BY grp % 3 ORDER BY 1");
    query(db, "SELECT substr(name, 1, instr(name, '-') - 1) AS w, count(*) FROM t GROUP BY w ORDER BY w");
    sqlite3_close(db);
    return 0;
}
