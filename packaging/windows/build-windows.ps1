<#
.SYNOPSIS
Builds Perch for Windows: a virtual environment, the PyInstaller one-folder app (dist\perch) and the
Inno Setup installer (dist\perch-<version>-windows-x64-setup.exe).

.DESCRIPTION
Run from any folder on 64-bit Windows with Python 3.10+ and Inno Setup 6.3+ installed:
    powershell -ExecutionPolicy Bypass -File packaging\windows\build-windows.ps1
ISCC.exe is looked up in $env:ISCC, then PATH, then the default Inno Setup 6 folders. When
$env:PERCH_SIGN_SHA1 holds the thumbprint of a code-signing certificate in the certificate store, the two
executables and the installer are signed with signtool (which must be on PATH).
#>
param(
    [string]$Python = "python",
    [string]$Venv = "build\venv-windows"
)
$ErrorActionPreference = "Stop"
Set-Location (Resolve-Path "$PSScriptRoot\..\..")

function Invoke-Checked([string]$Program, [string[]]$Arguments) {
    & $Program @Arguments
    if ($LASTEXITCODE -ne 0) { throw "$Program $($Arguments -join ' ') failed with exit code $LASTEXITCODE" }
}

function Find-Iscc {
    if ($env:ISCC) { return $env:ISCC }
    $onPath = Get-Command ISCC.exe -ErrorAction SilentlyContinue
    if ($onPath) { return $onPath.Source }
    foreach ($base in @(${env:ProgramFiles(x86)}, $env:ProgramFiles, "$env:LOCALAPPDATA\Programs")) {
        $candidate = Join-Path $base "Inno Setup 6\ISCC.exe"
        if ($base -and (Test-Path $candidate)) { return $candidate }
    }
    throw "ISCC.exe not found: install Inno Setup 6 (https://jrsoftware.org/isinfo.php) or set `$env:ISCC"
}

function Invoke-Sign([string[]]$Files) {
    if (-not $env:PERCH_SIGN_SHA1) { return }
    Invoke-Checked "signtool" (@("sign", "/sha1", $env:PERCH_SIGN_SHA1, "/fd", "sha256",
        "/tr", "http://timestamp.digicert.com", "/td", "sha256") + $Files)
}

# 1. A clean environment with Perch and PyInstaller (no CUDA wheels: the GPU build uses the system's CUDA).
if (-not (Test-Path "$Venv\Scripts\python.exe")) { Invoke-Checked $Python @("-m", "venv", $Venv) }
$py = (Resolve-Path "$Venv\Scripts\python.exe").Path
Invoke-Checked $py @("-m", "pip", "install", "--quiet", "--upgrade", "pip")
Invoke-Checked $py @("-m", "pip", "install", "--quiet", ".", "pyinstaller>=6.10")
$version = (& $py -c "import importlib.metadata as m; print(m.version('perch-dictation'))").Trim()
if ($LASTEXITCODE -ne 0 -or -not $version) { throw "could not read Perch's version" }

# 2. The one-folder app: dist\perch\perchw.exe (tray app) and dist\perch\perch.exe (command line).
Invoke-Checked $py @("-m", "PyInstaller", "--noconfirm", "--clean", "--distpath", "dist",
    "--workpath", "build\pyinstaller-windows", "packaging\pyinstaller\perch.spec")
foreach ($exe in @("perchw.exe", "perch.exe")) {
    if (-not (Test-Path "dist\perch\$exe")) { throw "the PyInstaller build has no dist\perch\$exe" }
}
Invoke-Checked (Resolve-Path "dist\perch\perch.exe").Path @("--help") | Out-Null
Invoke-Sign @("dist\perch\perchw.exe", "dist\perch\perch.exe")

# 3. The installer.
Invoke-Checked (Find-Iscc) @("/Q", "/DAppVersion=$version", "packaging\windows\perch.iss")
$setup = "dist\perch-$version-windows-x64-setup.exe"
Invoke-Sign @($setup)
Write-Host "Built $setup ($([math]::Round((Get-Item $setup).Length / 1MB)) MB)"
