namespace Tracker.ApiService.Auth;

/// <summary>Registration: a name, a unique email and a password.</summary>
/// <param name="Name">1–100 characters after trimming.</param>
/// <param name="Email">A valid address of at most 254 characters; unique regardless of case.</param>
/// <param name="Password">8–128 characters with a lower-case letter, an upper-case letter and a digit.</param>
public sealed record RegisterRequest(string? Name, string? Email, string? Password);

/// <param name="ClientId">The new client's id.</param>
/// <param name="ApiKey">The client's first API key, named "default". Shown this once: only its hash is kept.</param>
public sealed record RegisterResult(Guid ClientId, string ApiKey);

public sealed record LoginRequest(string? Email, string? Password);

/// <param name="Email">Masked: first character, one '*' per remaining character of the local part, '@domain'.</param>
public sealed record ClientView(Guid Id, string Name, string Email, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <param name="AccessToken">HS256 JWT; send it as <c>Authorization: Bearer &lt;token&gt;</c>.</param>
/// <param name="AccessTokenExpiresIn">Seconds until the token expires.</param>
public sealed record TokenView(string AccessToken, int AccessTokenExpiresIn);

public sealed record LoginResult(ClientView Client, TokenView Token);
