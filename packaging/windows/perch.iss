; Inno Setup 6 script for Perch on Windows: installs the PyInstaller one-folder build (dist\perch).
;
; Build it with packaging\windows\build-windows.ps1, or by hand after PyInstaller:
;     ISCC /DAppVersion=0.1.0 packaging\windows\perch.iss
; The installer lands in dist\ as perch-<version>-windows-x64-setup.exe.
;
; Per-user by default (no administrator rights, into %LOCALAPPDATA%\Programs\Perch); the first page offers
; "install for all users" instead. Settings, history, logs and downloaded models live in %LOCALAPPDATA%\perch
; (platformdirs' folders for "perch": the data and settings folder itself, Cache\models, Logs); the uninstaller
; keeps them unless the person asks for them to go.

#if VER < EncodeVer(6, 3, 0)
  #error Inno Setup 6.3 or newer is needed (x64compatible)
#endif
#ifndef AppVersion
  #error Pass the version: ISCC /DAppVersion=X.Y.Z perch.iss
#endif
#ifndef DistDir
  #define DistDir "..\..\dist\perch"
#endif

#define AppName "Perch"
; The tray app (no console window) and the command line, side by side in one folder.
#define GuiExe "perchw.exe"
#define CliExe "perch.exe"

[Setup]
AppId={{48017CD0-32BC-4319-BA2A-640A1143268F}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=The Perch authors
AppComments=Offline dictation: hold a key, speak, and the words are typed for you
DefaultDirName={autopf}\{#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
; The registry values below are the login entry of the person running Setup, the same value the app's own
; "Start at login" setting writes, so they stay in HKEY_CURRENT_USER in either install mode.
UsedUserAreasWarning=no
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
; Qt 6 needs Windows 10 1809 or later.
MinVersion=10.0.17763
OutputDir=..\..\dist
OutputBaseFilename=perch-{#AppVersion}-windows-x64-setup
SetupIconFile=perch.ico
UninstallDisplayIcon={app}\{#GuiExe}
UninstallDisplayName={#AppName}
WizardStyle=modern
Compression=lzma2
SolidCompression=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "startatlogin"; Description: "{cm:AutoStartProgram,{#AppName}}"; GroupDescription: "{cm:AutoStartProgramGroupDescription}"; Flags: unchecked

[InstallDelete]
; Files of an earlier version that this one no longer ships would otherwise stay and could be loaded.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#DistDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#GuiExe}"; WorkingDir: "{app}"; Comment: "Offline dictation"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#GuiExe}"; WorkingDir: "{app}"; Tasks: desktopicon

[Registry]
; As app/autostart.py writes it: value "Perch" under Run holding the quoted path of the tray executable.
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; ValueName: "Perch"; ValueData: """{app}\{#GuiExe}"""; Flags: uninsdeletevalue; Tasks: startatlogin
; A switch-off recorded earlier in Task Manager would otherwise outlive the new entry.
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"; ValueType: none; ValueName: "Perch"; Flags: deletevalue dontcreatekey; Tasks: startatlogin

[UninstallDelete]
; Anything the app may have left beside its own files (caches written next to the libraries).
Type: filesandordirs; Name: "{app}\_internal"

[Run]
Filename: "{app}\{#GuiExe}"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[Code]
const
  RunKey = 'Software\Microsoft\Windows\CurrentVersion\Run';
  ApprovedKey = 'Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run';
  RunValue = 'Perch';
  DataFolder = '{localappdata}\perch';

{ Ask a running Perch from this folder to quit, so that its files can be replaced or removed. }
procedure QuitRunningPerch();
var
  Cli: String;
  ResultCode: Integer;
begin
  Cli := ExpandConstant('{app}\{#CliExe}');
  if FileExists(Cli) then
    if Exec(Cli, 'quit', '', SW_HIDE, ewWaitUntilTerminated, ResultCode) and (ResultCode = 0) then
      Sleep(1500);
end;

{ Whether the login entry starts Perch from this installation (the installer's task or the app's own setting). }
function LoginEntryIsOurs(): Boolean;
var
  Command: String;
begin
  Result := RegQueryStringValue(HKEY_CURRENT_USER, RunKey, RunValue, Command) and
    (Pos(UpperCase(AddBackslash(ExpandConstant('{app}'))), UpperCase(Command)) > 0);
end;

function PrepareToInstall(var NeedsRestart: Boolean): String;
begin
  QuitRunningPerch();
  Result := '';
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Data: String;
begin
  if CurUninstallStep = usUninstall then
  begin
    QuitRunningPerch();
    if LoginEntryIsOurs() then
    begin
      RegDeleteValue(HKEY_CURRENT_USER, RunKey, RunValue);
      RegDeleteValue(HKEY_CURRENT_USER, ApprovedKey, RunValue);
    end;
  end
  else if CurUninstallStep = usPostUninstall then
  begin
    { Settings, history, recordings, logs and models are kept unless the person says otherwise; a silent
      uninstall keeps them. }
    Data := ExpandConstant(DataFolder);
    if DirExists(Data) and (not UninstallSilent()) then
      if MsgBox('Also delete your Perch settings, dictation history and downloaded speech models?' + #13#10#13#10 +
                'They are in ' + Data + ' (the models alone can take several GB). Choose No to keep them ' +
                'for a later installation.', mbConfirmation, MB_YESNO or MB_DEFBUTTON2) = IDYES then
        DelTree(Data, True, True, True);
  end;
end;
