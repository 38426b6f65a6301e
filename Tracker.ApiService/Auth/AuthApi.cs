using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Net.Http.Headers;
using Npgsql;
using Tracker.ApiService.ApiKeys;
using Tracker.ApiService.Http;
using Tracker.ApiService.RateLimiting;
using Tracker.Data;
using Tracker.Data.Entities;

namespace Tracker.ApiService.Auth;

/// <summary><c>POST /api/v1/auth/register</c> and <c>POST /api/v1/auth/login</c>.</summary>
public static class AuthApi
{
    private const string EmailUniqueIndex = "ux_clients_normalized_email";

    public static IEndpointRouteBuilder MapAuthApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/auth").WithTags("Authentication").AllowAnonymous()
            .RequireTrackerRateLimiting(RateLimitPolicies.Auth);

        group.MapPost("/register", RegisterAsync)
            .WithName("Register")
            .WithSummary("Register a client")
            .WithDescription("Creates a client and its first API key (named \"default\"). The key is in the answer this once; only its hash is kept.")
            .ProducesProblem(StatusCodes.Status409Conflict);

        group.MapPost("/login", LoginAsync)
            .WithName("Login")
            .WithSummary("Log in and get an access token")
            .WithDescription("Exchanges email and password for a JWT access token used by the analytics and key-management endpoints.")
            .ProducesProblem(StatusCodes.Status401Unauthorized);

        return routes;
    }

    private static async Task<Results<Created<Envelope<RegisterResult>>, ValidationProblem, ProblemHttpResult>> RegisterAsync(
        RegisterRequest request, TrackerDbContext db, PasswordHashing passwords, TimeProvider time, CancellationToken cancellationToken)
    {
        var errors = CredentialRules.ValidateRegistration(request);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors, detail: "The registration was not accepted; see errors.");
        }

        var now = time.GetUtcNow();
        var email = request.Email!.Trim();
        var client = new Client
        {
            Id = Guid.CreateVersion7(now),
            Name = request.Name!.Trim(),
            Email = email,
            NormalizedEmail = EmailAddresses.Normalize(email),
            PasswordHash = string.Empty,
            CreatedAt = now,
            UpdatedAt = now,
        };
        client.PasswordHash = passwords.Hash(client, request.Password!);
        var (apiKey, keyRow) = ApiKeyIssuer.Create(client.Id, "default", now);
        db.Clients.Add(client);
        db.ApiKeys.Add(keyRow);

        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException exception) when (exception.InnerException is PostgresException
        {
            SqlState: PostgresErrorCodes.UniqueViolation, ConstraintName: EmailUniqueIndex,
        })
        {
            // The unique index decides, so two concurrent registrations of one email get one 201 and one 409.
            return TypedResults.Problem(
                statusCode: StatusCodes.Status409Conflict,
                title: "Email already registered.",
                detail: "A client with this email already exists; log in instead.");
        }

        return TypedResults.Created((string?)null, Envelope.Of("Client created successfully", new RegisterResult(client.Id, apiKey)));
    }

    private static async Task<Results<Ok<Envelope<LoginResult>>, ValidationProblem, ProblemHttpResult>> LoginAsync(
        LoginRequest request, TrackerDbContext db, PasswordHashing passwords, AccessTokenIssuer tokens,
        HttpContext httpContext, CancellationToken cancellationToken)
    {
        var errors = CredentialRules.ValidateLogin(request);
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors, detail: "Email and password are required.");
        }

        var normalizedEmail = EmailAddresses.Normalize(request.Email!);
        var client = await db.Clients.AsNoTracking()
            .FirstOrDefaultAsync(candidate => candidate.NormalizedEmail == normalizedEmail, cancellationToken);

        // Verify runs the full hash even when the client is unknown: both failures take the same time.
        if (!passwords.Verify(client, request.Password!) || client is null)
        {
            httpContext.Response.Headers.Append(HeaderNames.WWWAuthenticate, "Bearer realm=\"tracker\"");
            return TypedResults.Problem(
                statusCode: StatusCodes.Status401Unauthorized,
                title: "Invalid credentials",
                detail: "The email or the password is wrong.");
        }

        var view = new ClientView(client.Id, client.Name, EmailAddresses.Mask(client.Email), client.CreatedAt, client.UpdatedAt);
        var token = new TokenView(tokens.Issue(client.Id), tokens.LifetimeSeconds);
        return TypedResults.Ok(Envelope.Of("Login successfully", new LoginResult(view, token)));
    }
}
