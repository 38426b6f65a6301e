using System.Globalization;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Components;
using Tracker.Web.Api;

namespace Tracker.Web.Account;

/// <summary>
/// The signed-in person's session: a cookie whose ticket, encrypted by data protection, carries the API's access
/// token. Only the server reads it; the browser holds an opaque, HttpOnly cookie.
/// </summary>
internal static class CookieSession
{
    public const string LoginPath = "/account/login";

    private const string AccessTokenName = "access_token";

    // Expire the session a little before the token does, so a page never starts with a token about to be refused.
    private static readonly TimeSpan ExpiryMargin = TimeSpan.FromSeconds(30);

    public static async Task SignInAsync(HttpContext context, SignedInClient signedIn, TimeProvider time)
    {
        var identity = new ClaimsIdentity(
            [
                new Claim(ClaimTypes.NameIdentifier, signedIn.Client.Id.ToString()),
                new Claim(ClaimTypes.Name, signedIn.Client.Name),
                new Claim(ClaimTypes.Email, signedIn.Client.Email),
            ],
            CookieAuthenticationDefaults.AuthenticationScheme);
        var lifetime = TimeSpan.FromSeconds(signedIn.Token.AccessTokenExpiresIn) - ExpiryMargin;
        var properties = new AuthenticationProperties
        {
            IsPersistent = false,
            AllowRefresh = false,
            ExpiresUtc = time.GetUtcNow() + (lifetime > TimeSpan.Zero ? lifetime : TimeSpan.FromSeconds(signedIn.Token.AccessTokenExpiresIn)),
        };
        properties.StoreTokens([new AuthenticationToken { Name = AccessTokenName, Value = signedIn.Token.AccessToken }]);
        await context.SignInAsync(CookieAuthenticationDefaults.AuthenticationScheme, new ClaimsPrincipal(identity), properties);
    }

    /// <summary>The access token of the signed-in person, or null when there is none.</summary>
    public static Task<string?> GetAccessTokenAsync(this HttpContext context) =>
        context.GetTokenAsync(CookieAuthenticationDefaults.AuthenticationScheme, AccessTokenName);

    /// <summary>The signed-in person's client id, to mark them in lists of clients.</summary>
    public static Guid? ClientId(this ClaimsPrincipal user) =>
        Guid.TryParse(user.FindFirstValue(ClaimTypes.NameIdentifier), CultureInfo.InvariantCulture, out var id) ? id : null;

    /// <summary>Ends a session the API no longer accepts and sends the person to sign in again.</summary>
    public static async Task EndExpiredAsync(HttpContext context, NavigationManager navigation)
    {
        await context.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
        navigation.NavigateTo($"{LoginPath}?expired=true");
    }

    /// <summary><paramref name="returnUrl"/> when it stays on this site, else <paramref name="fallback"/>.</summary>
    public static string LocalUrlOr(string? returnUrl, string fallback) =>
        returnUrl is { Length: > 1 } && returnUrl[0] == '/' && returnUrl[1] is not ('/' or '\\')
        && Uri.IsWellFormedUriString(returnUrl, UriKind.Relative)
            ? returnUrl
            : fallback;
}
