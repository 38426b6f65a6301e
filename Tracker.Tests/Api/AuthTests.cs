using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.Infrastructure.ProblemAssertions;

namespace Tracker.Tests.Api;

/// <summary>Registration and login against real PostgreSQL and Redis.</summary>
[Collection(nameof(RealServers))]
public sealed partial class AuthTests(ServersFixture servers) : ApiTest(servers)
{
    [Fact]
    public async Task Register_creates_a_client_and_returns_its_first_api_key_once()
    {
        using var response = await Http.RegisterAsync(new { name = "  Ada  ", email = UniqueEmail(), password = StrongPassword });

        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("Client created successfully", body.GetProperty("message").GetString());
        var data = body.GetProperty("data");
        Assert.NotEqual(Guid.Empty, data.GetProperty("clientId").GetGuid());
        Assert.Matches(ApiKeyShape(), data.GetProperty("apiKey").GetString());
    }

    [Fact]
    public async Task Register_reports_every_broken_rule_with_what_is_allowed()
    {
        using var response = await Http.RegisterAsync(new { name = "   ", email = "not-an-email", password = "short" });

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("1 to 100 characters", Assert.Single(ErrorsFor(problem, "name")), StringComparison.Ordinal);
        Assert.Contains("valid address", Assert.Single(ErrorsFor(problem, "email")), StringComparison.Ordinal);
        Assert.Contains("8 to 128 characters", Assert.Single(ErrorsFor(problem, "password")), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("alllowercase1", "Password must contain an upper-case letter.")]
    [InlineData("ALLUPPERCASE1", "Password must contain a lower-case letter.")]
    [InlineData("NoDigitsHere", "Password must contain a digit.")]
    [InlineData("Ab1defg", "Password must be 8 to 128 characters long.")]
    public async Task Passwords_need_length_and_three_character_classes(string password, string message)
    {
        using var response = await Http.RegisterAsync(new { name = "A", email = UniqueEmail(), password });

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Equal([message], ErrorsFor(problem, "password"));
    }

    [Theory]
    [InlineData(101, 255)]
    public async Task Names_and_emails_over_their_limits_are_refused(int nameLength, int emailLength)
    {
        var email = new string('a', emailLength - "@example.com".Length) + "@example.com";
        using var response = await Http.RegisterAsync(new { name = new string('n', nameLength), email, password = StrongPassword });

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Single(ErrorsFor(problem, "name"));
        Assert.Single(ErrorsFor(problem, "email"));
    }

    [Fact]
    public async Task An_email_registered_in_other_case_is_a_409()
    {
        var email = UniqueEmail("Mixed.Case");
        await Http.RegisterNewAsync(email);

        using var response = await Http.RegisterAsync(new { name = "Again", email = email.ToUpperInvariant(), password = StrongPassword });

        var problem = await AssertProblemAsync(response, HttpStatusCode.Conflict);
        Assert.Equal("Email already registered.", problem.GetProperty("title").GetString());
    }

    [Fact]
    public async Task Concurrent_registrations_of_one_email_give_exactly_one_201()
    {
        var email = UniqueEmail("race");
        var attempts = Enumerable.Range(0, 12).Select(async index =>
        {
            using var response = await Http.RegisterAsync(new { name = $"Racer {index}", email, password = StrongPassword });
            return response.StatusCode;
        });

        var statuses = await Task.WhenAll(attempts);

        Assert.Equal(1, statuses.Count(status => status == HttpStatusCode.Created));
        Assert.Equal(11, statuses.Count(status => status == HttpStatusCode.Conflict));
    }

    [Fact]
    public async Task Login_returns_the_masked_client_and_a_token_that_works()
    {
        var client = await Http.RegisterNewAsync();

        using var response = await Http.LoginAsync(client.Email.ToUpperInvariant(), client.Password);

        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Login successfully", body.GetProperty("message").GetString());
        var data = body.GetProperty("data");
        var view = data.GetProperty("client");
        Assert.Equal(client.Id, view.GetProperty("id").GetGuid());
        Assert.Equal("Test Client", view.GetProperty("name").GetString());
        Assert.Equal("c" + new string('*', client.Email.IndexOf('@') - 1) + "@example.com", view.GetProperty("email").GetString());
        Assert.Equal(["id", "name", "email", "createdAt", "updatedAt"], view.EnumerateObject().Select(property => property.Name));
        Assert.Equal(3600, data.GetProperty("token").GetProperty("accessTokenExpiresIn").GetInt32());

        var token = data.GetProperty("token").GetProperty("accessToken").GetString();
        using var keys = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
        Assert.Equal(HttpStatusCode.OK, keys.StatusCode);
    }

    [Fact]
    public async Task Unknown_email_and_wrong_password_get_the_same_401()
    {
        var client = await Http.RegisterNewAsync();

        using var wrongPassword = await Http.LoginAsync(client.Email, "Wrong-password-1");
        using var unknownEmail = await Http.LoginAsync(UniqueEmail("nobody"), "Wrong-password-1");

        var first = await AssertProblemAsync(wrongPassword, HttpStatusCode.Unauthorized);
        var second = await AssertProblemAsync(unknownEmail, HttpStatusCode.Unauthorized);
        Assert.Equal("Invalid credentials", first.GetProperty("title").GetString());
        Assert.Equal(first.GetProperty("title").GetString(), second.GetProperty("title").GetString());
        Assert.Equal(first.GetProperty("detail").GetString(), second.GetProperty("detail").GetString());
        Assert.NotEmpty(wrongPassword.Headers.WwwAuthenticate);
        Assert.NotEmpty(unknownEmail.Headers.WwwAuthenticate);
    }

    [Fact]
    public async Task Login_takes_as_long_for_an_unknown_email_as_for_a_wrong_password()
    {
        var client = await Http.RegisterNewAsync();
        await LoginDurationAsync(client.Email); // warm up both paths
        await LoginDurationAsync(UniqueEmail("nobody"));

        // Interleaved, so a slow spell of the machine falls on both alike; medians of 15.
        var wrongPassword = new List<TimeSpan>();
        var unknownEmail = new List<TimeSpan>();
        for (var attempt = 0; attempt < 15; attempt++)
        {
            wrongPassword.Add(await LoginDurationAsync(client.Email));
            unknownEmail.Add(await LoginDurationAsync(UniqueEmail("nobody")));
        }

        // Both run one full PBKDF2 verification (tens of milliseconds); skipping it would be ~100x faster, so a
        // factor of 3 either way cannot hide that, nor flake on noise.
        var ratio = Median(unknownEmail).TotalMilliseconds / Median(wrongPassword).TotalMilliseconds;
        Assert.InRange(ratio, 1 / 3.0, 3.0);
    }

    [Fact]
    public async Task Login_without_email_or_password_is_a_400()
    {
        using var response = await Http.PostAsJsonAsync("/api/v1/auth/login", new { email = "" });

        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Single(ErrorsFor(problem, "email"));
        Assert.Single(ErrorsFor(problem, "password"));
    }

    [Fact]
    public async Task No_password_key_or_hash_appears_in_any_answer_or_log_line()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        using var login = await Http.LoginAsync(client.Email, client.Password);
        using var keys = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
        using var badLogin = await Http.LoginAsync(client.Email, "Wrong-password-1");
        var answers = await login.Content.ReadAsStringAsync() + await keys.Content.ReadAsStringAsync() + await badLogin.Content.ReadAsStringAsync();

        await using var db = TestDatabase.CreateContext(Factory.DatabaseConnectionString);
        var passwordHash = db.Clients.Single(candidate => candidate.Id == client.Id).PasswordHash;
        var keyHash = Convert.ToHexStringLower(db.ApiKeys.Single(key => key.ClientId == client.Id).KeyHash);
        var secrets = new[] { client.Password, client.ApiKey, passwordHash, keyHash, token, Factory.JwtSigningKey };

        foreach (var secret in secrets)
        {
            Assert.DoesNotContain(secret, answers, StringComparison.Ordinal);
            Assert.DoesNotContain(Factory.Logs.Lines, line => line.Contains(secret, StringComparison.Ordinal));
        }
    }

    private async Task<TimeSpan> LoginDurationAsync(string email)
    {
        var stopwatch = Stopwatch.StartNew();
        using var response = await Http.LoginAsync(email, "Wrong-password-1");
        var duration = stopwatch.Elapsed;
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        return duration;
    }

    private static TimeSpan Median(List<TimeSpan> durations) => durations.Order().ElementAt(durations.Count / 2);

    [GeneratedRegex("^ak_[A-Za-z0-9_-]{43}$")]
    private static partial Regex ApiKeyShape();
}
