"Package setup read from settings.ini (nbdev 2 layout), written without `pkg_resources`, which current setuptools no longer ships."
from configparser import ConfigParser
import setuptools, shlex

assert setuptools.__version__ >= '36.2'

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

expected = 'version description keywords author author_email'.split()
missing = [o for o in expected if o not in cfg]
if missing: raise ValueError(f'settings.ini is missing: {missing}')

licenses = {'apache2': 'Apache-2.0'}  # an SPDX expression: setuptools deprecates license classifiers
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12 3.13'.split()

def _reqs(key): return shlex.split(cfg.get(key, '').strip())

requirements = _reqs('requirements')
dev_requirements = _reqs('dev_requirements')
onnx_requirements = _reqs('onnx_requirements')   # the optional [onnx] extra, also part of [dev] so that the tests have it
lic = licenses[cfg['license'].lower()]
min_python = cfg['min_python']
console_scripts = [s.strip() for s in cfg.get('console_scripts', '').split(',') if s.strip()]

setuptools.setup(
    name=cfg['lib_name'].replace('_', '-'),
    license=lic,
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
    ] + ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=[cfg['lib_path'], cfg['lib_path'] + '.*']),
    include_package_data=True,
    install_requires=requirements,
    extras_require={'dev': dev_requirements + onnx_requirements, 'onnx': onnx_requirements},
    dependency_links=cfg.get('dep_links', '').split(),
    python_requires='>=' + min_python,
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': console_scripts, 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    version=cfg['version'],
    description=cfg['description'],
    keywords=cfg['keywords'],
    author=cfg['author'],
    author_email=cfg['author_email'],
)
