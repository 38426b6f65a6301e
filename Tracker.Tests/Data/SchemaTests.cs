using Microsoft.EntityFrameworkCore;
using Npgsql;
using Tracker.Data;
using Tracker.Data.Entities;
using Tracker.Tests.Infrastructure;

namespace Tracker.Tests.Data;

/// <summary>What the initial migration builds, checked in a real PostgreSQL.</summary>
[Collection(nameof(RealServers))]
public sealed class SchemaTests(ServersFixture servers) : IAsyncLifetime
{
    private string _connectionString = null!;
    private NpgsqlDataSource? _dataSource;

    public async Task InitializeAsync() => _connectionString = await TestDatabase.CreateMigratedAsync(servers.Postgres);

    public async Task DisposeAsync()
    {
        if (_dataSource is not null)
        {
            await _dataSource.DisposeAsync();
        }

        await TestDatabase.DropAsync(servers.Postgres, _connectionString);
    }

    [Fact]
    public async Task Logs_are_partitioned_by_day_with_partitions_around_today()
    {
        Assert.Equal("p", await ScalarAsync<string>("SELECT relkind::text FROM pg_class WHERE relname = 'logs'"));
        var today = DateTime.UtcNow.Date;
        foreach (var day in new[] { today.AddDays(-90), today, today.AddDays(7) })
        {
            var partition = $"{LogTable.PartitionPrefix}{day:yyyyMMdd}";
            Assert.Equal(1L, await ScalarAsync<long>($"SELECT count(*) FROM pg_class WHERE relname = '{partition}'"));
        }
    }

    [Fact]
    public async Task Daily_usage_of_a_client_is_read_from_the_primary_key_alone()
    {
        var definition = await ScalarAsync<string>("SELECT indexdef FROM pg_indexes WHERE indexname = 'pk_usage_hourly'");
        Assert.EndsWith("(client_id, hour_start) INCLUDE (request_count)", definition, StringComparison.Ordinal);

        await ExecuteAsync("""
            INSERT INTO clients (id, name, email, normalized_email, password_hash, created_at, updated_at)
            VALUES ('00000000-0000-0000-0000-000000000001', 'c', 'c@example.com', 'c@example.com', 'x', now(), now());
            INSERT INTO usage_hourly SELECT '00000000-0000-0000-0000-000000000001', hour, 1
            FROM generate_series(date_trunc('hour', now(), 'UTC') - interval '89 days', date_trunc('hour', now(), 'UTC'), interval '1 hour') AS hour;
            """);
        await ExecuteAsync("VACUUM ANALYZE usage_hourly");
        var plan = await PlanAsync("""
            SELECT sum(request_count) FROM usage_hourly
            WHERE client_id = '00000000-0000-0000-0000-000000000001' AND hour_start >= now() - interval '7 days'
            """);
        Assert.Contains("Index Only Scan using pk_usage_hourly", plan, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Partitions_created_from_any_session_time_zone_split_days_at_utc_midnight()
    {
        // A day beyond the migration's window, so its partition is created here, in a session far from UTC.
        var day = DateTime.UtcNow.Date.AddDays(20);
        await ExecuteAsync($"""
            SET TIME ZONE 'America/Los_Angeles';
            SELECT {LogTable.EnsurePartitionsFunction}('{day:yyyy-MM-dd}', '{day.AddDays(1):yyyy-MM-dd}');
            INSERT INTO logs (client_id, api_key_id, occurred_at, ip_address, method, endpoint) VALUES
              (gen_random_uuid(), gen_random_uuid(), '{day.AddDays(1).AddMilliseconds(-1):yyyy-MM-dd HH:mm:ss.fff}+00', '::1', 'GET', '/a'),
              (gen_random_uuid(), gen_random_uuid(), '{day.AddDays(1):yyyy-MM-dd HH:mm:ss}+00', '127.0.0.1', 'GET', '/b');
            """);

        Assert.Equal(1L, await ScalarAsync<long>($"SELECT count(*) FROM {LogTable.PartitionPrefix}{day:yyyyMMdd}"));
        Assert.Equal(1L, await ScalarAsync<long>($"SELECT count(*) FROM {LogTable.PartitionPrefix}{day.AddDays(1):yyyyMMdd}"));
    }

    [Fact]
    public async Task Ensuring_partitions_is_idempotent_and_creates_only_what_is_missing()
    {
        var first = DateTime.UtcNow.Date.AddDays(8);
        var sql = $"SELECT {LogTable.EnsurePartitionsFunction}('{first:yyyy-MM-dd}', '{first.AddDays(2):yyyy-MM-dd}')";

        Assert.Equal(3, await ScalarAsync<int>(sql));
        Assert.Equal(0, await ScalarAsync<int>(sql));
    }

    [Fact]
    public async Task A_log_outside_every_partition_is_refused_not_silently_stored()
    {
        var exception = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync("""
            INSERT INTO logs (client_id, api_key_id, occurred_at, ip_address, method, endpoint)
            VALUES (gen_random_uuid(), gen_random_uuid(), '2000-01-01T00:00:00Z', '::1', 'GET', '/')
            """));
        Assert.Equal(PostgresErrorCodes.CheckViolation, exception.SqlState);
    }

    [Fact]
    public async Task Email_is_unique_without_regard_to_case()
    {
        await using var dbContext = TestDatabase.CreateContext(_connectionString);
        dbContext.Clients.Add(NewClient("Ada@Example.com"));
        await dbContext.SaveChangesAsync();

        await using var second = TestDatabase.CreateContext(_connectionString);
        second.Clients.Add(NewClient("ada@example.COM"));
        var exception = await Assert.ThrowsAsync<DbUpdateException>(() => second.SaveChangesAsync());
        Assert.Equal(PostgresErrorCodes.UniqueViolation, Assert.IsType<PostgresException>(exception.InnerException).SqlState);
    }

    [Fact]
    public async Task Api_key_hashes_are_unique_and_exactly_32_bytes()
    {
        var owner = NewClient("keys@example.com");
        await using (var dbContext = TestDatabase.CreateContext(_connectionString))
        {
            dbContext.Clients.Add(owner);
            dbContext.ApiKeys.Add(NewKey(owner.Id, new byte[ApiKey.KeyHashLength]));
            await dbContext.SaveChangesAsync();
        }

        await using var duplicate = TestDatabase.CreateContext(_connectionString);
        duplicate.ApiKeys.Add(NewKey(owner.Id, new byte[ApiKey.KeyHashLength]));
        var exception = await Assert.ThrowsAsync<DbUpdateException>(() => duplicate.SaveChangesAsync());
        Assert.Equal(PostgresErrorCodes.UniqueViolation, Assert.IsType<PostgresException>(exception.InnerException).SqlState);

        await using var truncated = TestDatabase.CreateContext(_connectionString);
        truncated.ApiKeys.Add(NewKey(owner.Id, new byte[16]));
        exception = await Assert.ThrowsAsync<DbUpdateException>(() => truncated.SaveChangesAsync());
        Assert.Equal(PostgresErrorCodes.CheckViolation, Assert.IsType<PostgresException>(exception.InnerException).SqlState);
    }

    [Fact]
    public async Task Usage_rollups_accept_only_whole_utc_hours()
    {
        var owner = NewClient("hours@example.com");
        await using var dbContext = TestDatabase.CreateContext(_connectionString);
        dbContext.Clients.Add(owner);
        dbContext.HourlyUsage.Add(new HourlyUsage { ClientId = owner.Id, HourStart = new DateTimeOffset(2026, 11, 25, 13, 0, 0, TimeSpan.Zero), RequestCount = 1 });
        await dbContext.SaveChangesAsync();

        dbContext.HourlyUsage.Add(new HourlyUsage { ClientId = owner.Id, HourStart = new DateTimeOffset(2026, 11, 25, 13, 30, 0, TimeSpan.Zero), RequestCount = 1 });
        var exception = await Assert.ThrowsAsync<DbUpdateException>(() => dbContext.SaveChangesAsync());
        Assert.Equal(PostgresErrorCodes.CheckViolation, Assert.IsType<PostgresException>(exception.InnerException).SqlState);
    }

    private static Client NewClient(string email) => new()
    {
        Id = Guid.CreateVersion7(),
        Name = "Test",
        Email = email,
        NormalizedEmail = email.ToLowerInvariant(),
        PasswordHash = "not-a-real-hash",
        CreatedAt = DateTimeOffset.UtcNow,
        UpdatedAt = DateTimeOffset.UtcNow,
    };

    private static ApiKey NewKey(Guid clientId, byte[] hash) => new()
    {
        Id = Guid.CreateVersion7(),
        ClientId = clientId,
        Name = "default",
        Prefix = "ak_12345",
        KeyHash = hash,
        CreatedAt = DateTimeOffset.UtcNow,
    };

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task Daily_and_top_over_the_totals_view_read_usage_hourly_through_its_indexes_and_count_marked_hours_from_their_cells()
    {
        await ExecuteAsync("""
            INSERT INTO clients (id, name, email, normalized_email, password_hash, created_at, updated_at)
            SELECT ('00000000-0000-0000-0000-0000000000' || lpad(n::text, 2, '0'))::uuid, 'c', n || '@example.com', n || '@example.com', 'x', now(), now()
            FROM generate_series(1, 20) AS n;
            INSERT INTO usage_hourly SELECT id, hour, 1
            FROM clients, generate_series(date_trunc('hour', now(), 'UTC') - interval '2136 hours', date_trunc('hour', now(), 'UTC'), interval '1 hour') AS hour;
            INSERT INTO usage_hourly_marks VALUES ('00000000-0000-0000-0000-000000000001', date_trunc('hour', now(), 'UTC'));
            INSERT INTO usage_hourly_details VALUES ('00000000-0000-0000-0000-000000000001', date_trunc('hour', now(), 'UTC'),
                '/v1/orders', 'GET', 2, '00000000-0000-0000-0000-000000000002', 4, '{}');
            """);
        foreach (var table in new[] { "usage_hourly", "usage_hourly_marks", "usage_hourly_details" })
        {
            await ExecuteAsync($"VACUUM ANALYZE {table}");
        }

        var daily = await PlanAsync("""
            SELECT (hour_start AT TIME ZONE 'UTC')::date AS day, sum(request_count) FROM usage_hourly_totals
            WHERE client_id = '00000000-0000-0000-0000-000000000001' AND hour_start >= now() - interval '7 days' AND hour_start < now() + interval '1 hour'
            GROUP BY day
            """);
        Assert.True(daily.Contains("Index Only Scan using pk_usage_hourly on usage_hourly", StringComparison.Ordinal), daily);
        var top = await PlanAsync("""
            SELECT client_id, sum(request_count) FROM usage_hourly_totals
            WHERE hour_start >= now() - interval '24 hours' AND hour_start <= now()
            GROUP BY client_id ORDER BY 2 DESC LIMIT 3
            """);
        Assert.True(top.Contains("Index Only Scan using ix_usage_hourly_hour_start on usage_hourly", StringComparison.Ordinal), top);

        // The marked hour counts its cells (4), not its folded total (1).
        Assert.Equal(2136L + 4, await ScalarAsync<long>(
            "SELECT sum(request_count)::bigint FROM usage_hourly_totals WHERE client_id = '00000000-0000-0000-0000-000000000001'"));
    }

    [Theory]
    [InlineData("force_custom_plan")]
    [InlineData("force_generic_plan")]
    public async Task Top_reads_the_cells_of_the_marked_hours_only_not_every_cell_of_its_window(string planCacheMode)
    {
        // 200 clients with 10 cells in each of the last 48 hours, two of them with the current hour marked: the marked
        // hours' cells are looked up by client and hour, however many cells the window holds. With ten million logs of
        // history, the view before cost PostgreSQL 257 ms per uncached top, mostly an anti-join of the window's totals
        // against the marks.
        await ExecuteAsync("""
            INSERT INTO clients (id, name, email, normalized_email, password_hash, created_at, updated_at)
            SELECT ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, 'c', n || '@example.com', n || '@example.com', 'x', now(), now()
            FROM generate_series(1, 200) AS n;
            INSERT INTO usage_hourly_details
            SELECT id, hour, '/v1/e' || cell, 'GET', 2, '00000000-0000-0000-0000-000000000002', 1, '{}'
            FROM generate_series(date_trunc('hour', now(), 'UTC') - interval '47 hours', date_trunc('hour', now(), 'UTC'), interval '1 hour') AS hour,
                 clients, generate_series(1, 10) AS cell;
            INSERT INTO usage_hourly SELECT client_id, hour_start, sum(request_count) FROM usage_hourly_details GROUP BY 1, 2;
            -- A marked hour's folded total behind its cells, as after ingest since the last fold.
            UPDATE usage_hourly SET request_count = 3 WHERE client_id <= '00000000-0000-0000-0000-000000000002' AND hour_start = date_trunc('hour', now(), 'UTC');
            INSERT INTO usage_hourly_marks
            SELECT id, date_trunc('hour', now(), 'UTC') FROM clients WHERE id <= '00000000-0000-0000-0000-000000000002';
            """);
        foreach (var table in new[] { "usage_hourly", "usage_hourly_marks", "usage_hourly_details" })
        {
            await ExecuteAsync($"VACUUM ANALYZE {table}");
        }

        await using var connection = await OpenAsync();
        foreach (var statement in new[]
        {
            $"SET plan_cache_mode = {planCacheMode}",
            """
            PREPARE top(timestamptz, timestamptz, int) AS
            SELECT client_id, sum(request_count)::bigint AS total FROM usage_hourly_totals
            WHERE hour_start >= $1 AND hour_start <= $2 GROUP BY client_id ORDER BY total DESC, client_id LIMIT $3
            """,
        })
        {
            await using var command = new NpgsqlCommand(statement, connection);
            await command.ExecuteNonQueryAsync();
        }

        var plan = new List<string>();
        await using (var explain = new NpgsqlCommand(
            "EXPLAIN EXECUTE top(date_trunc('hour', now(), 'UTC') - interval '23 hours', date_trunc('hour', now(), 'UTC'), 10)", connection))
        await using (var reader = await explain.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                plan.Add(reader.GetString(0));
            }
        }

        var text = string.Join('\n', plan);
        Assert.True(plan.Any(line => line.Contains("pk_usage_hourly_details", StringComparison.Ordinal)), text);
        Assert.True(plan.Any(line => line.Contains("Index Cond: ((client_id = mark.client_id) AND (hour_start = mark.hour_start))", StringComparison.Ordinal)), text);
        Assert.False(plan.Any(line => line.Contains("Seq Scan on usage_hourly_details", StringComparison.Ordinal)
            || line.Contains("ix_usage_hourly_details_hour_start", StringComparison.Ordinal)), text);
        // Nor is every total of the window checked against the marks (at ten million logs an anti-join did that), nor
        // read to find the marked hours' own: each is looked up by its key.
        Assert.False(plan.Any(line => line.Contains("Anti Join", StringComparison.Ordinal)), text);
        Assert.True(plan.Any(line => line.Contains("using pk_usage_hourly on usage_hourly folded", StringComparison.Ordinal)), text);
        Assert.False(plan.Any(line => line.Contains("usage_hourly folded", StringComparison.Ordinal)
            && !line.Contains("using pk_usage_hourly on usage_hourly folded", StringComparison.Ordinal)), text);

        await using var total = new NpgsqlCommand(
            "SELECT sum(request_count)::bigint FROM usage_hourly_totals WHERE client_id = '00000000-0000-0000-0000-000000000001'", connection);
        // Every hour's cells, the marked one's too (not its folded 3).
        Assert.Equal(48L * 10, (long)(await total.ExecuteScalarAsync())!);
    }

    private async Task<string> PlanAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand("EXPLAIN " + sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var lines = new List<string>();
        while (await reader.ReadAsync())
        {
            lines.Add(reader.GetString(0));
        }

        return string.Join('\n', lines);
    }

    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    private async Task<NpgsqlConnection> OpenAsync()
    {
        _dataSource ??= NpgsqlDataSource.Create(_connectionString);
        return await _dataSource.OpenConnectionAsync();
    }
}
